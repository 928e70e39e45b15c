"""Big lines are placed, and draws closed, in slices with saved progress (chalicelib.delivery.line_slices): a line
larger than one slice completes, a retried or duplicated slice repeats nothing, and every notice has an
event id that does not depend on when it was sent."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.core.validation import parse_time
from chalicelib.delivery import line_notices, line_slices, serving
from chalicelib.domain import lines
from chalicelib.schema.messages import Envelope
from chalicelib.schema.models import Admission, Line, Notification
from tests.support import each_accepted, open_shop, place_line, sale_drop, wait_for


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Sneaker", 19900)
    return owner, creator_id, product


@pytest.fixture()
def pushed(app_patch) -> list[tuple[str, str, str]]:
    """Every line notice pushed in this process (the dev stack's consumers run here too, each
    environment with its own copy of the app: the patch reaches all of them)."""
    sent: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    original = line_notices.push_all

    def recording(notices: list[tuple[Envelope, str]]) -> None:
        with lock:
            sent.extend((notice.event_id, str(notice.event_type), user) for notice, user in notices)
        original(notices)

    app_patch("chalicelib.delivery.line_notices", push_all=recording)
    return sent


def joined_line(api, shop, mode: str, users: int, stock: int, start: float = 600, **settings) -> tuple[str, int]:
    """A drop whose line `users` joined before the start, taken off the dev stack's tick."""
    drop = sale_drop(api, shop, mode, start, stock, **settings)
    drop_id = drop["drop_id"]
    Line(drop_id=drop_id).update(actions=[Line.active.remove()])
    start_ms = parse_time("start_time", drop["start_time"])
    join = lines.enter_draw if mode == "draw" else lines.join_queue
    at = start_ms - 1000
    # Eight at once on one line's counters contend, as in DynamoDB: a join told to try again is tried again.
    each_accepted(lambda user: join(user, drop_id, at_ms=at), [f"u_{uuid.uuid4().hex}" for _ in range(users)])
    return drop_id, start_ms


def positions(drop_id: str) -> list[int]:
    return sorted(int(e.position) for e in Admission.query(drop_id, consistent_read=True) if e.position is not None)


def test_a_line_bigger_than_a_slice_is_placed_slice_by_slice_and_nothing_is_repeated(api, shop, pushed) -> None:
    drop_id, start = joined_line(api, shop, "queue", users=250, stock=10)
    Line(drop_id=drop_id).update(actions=[Line.sealed.set(True)])
    # A slice whose time is up still makes one step: the first counts the rank index (all 250 in a page)...
    counting = line_slices.place_slice(drop_id, deadline=time.monotonic())
    assert counting is not None and counting["counted"]["n"] == 250 and positions(drop_id) == []
    # ... the next commits one transaction (99 positions), then asks for the next.
    following = line_slices.place_slice(drop_id, time.monotonic(), counting["counted"])
    assert following == {"kind": "place", "drop_id": drop_id}
    line = Line.get(drop_id, consistent_read=True)
    assert int(line.placed_count) == line_slices.SLICE_ENTRIES and not line.placed
    assert positions(drop_id) == list(range(1, line_slices.SLICE_ENTRIES + 1))
    # Copies of the next slice run at once (a redelivery beside the original): each batch is placed once.
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda _: line_slices.place_slice(drop_id, time.monotonic() + 30), range(3)))
    place_line(drop_id)
    assert positions(drop_id) == list(range(1, 251))
    assert int(Line.get(drop_id, consistent_read=True).placed_count) == 250
    # A slice delivered again after the line is placed does nothing at all.
    told = len(pushed)
    assert line_slices.place_slice(drop_id, time.monotonic() + 30) is None
    assert len(pushed) == told
    mine = [(event_id, user) for event_id, kind, user in pushed if kind == "queue_position"]
    assert len(mine) == 250 and len(set(mine)) == 250 and len({user for _, user in mine}) == 250
    # The ids are the line's, not the clock's: the same user, kind and place always give the same id.
    entry = next(iter(Admission.query(drop_id, consistent_read=True)))
    expected = line_notices.event_id_of(drop_id, entry.user_id, "queue_position", int(entry.position))
    assert (expected, entry.user_id) in mine


def test_the_rank_index_is_counted_in_slices_before_the_first_place(api, shop, app_patch) -> None:
    app_patch("chalicelib.delivery.line_slices", COUNT_PAGE=40)
    drop_id, _ = joined_line(api, shop, "queue", users=100, stock=10)
    Line(drop_id=drop_id).update(actions=[Line.sealed.set(True)])
    # A slice out of time counts one page, places nothing, and hands its count to the next slice.
    first = line_slices.place_slice(drop_id, deadline=time.monotonic())
    assert first is not None and first["counted"]["n"] == 40 and positions(drop_id) == []
    second = line_slices.place_slice(drop_id, time.monotonic(), first["counted"])
    assert second is not None and second["counted"]["n"] == 80
    # The index ends short of the line (an entry it does not show yet): the count starts again, and a
    # count that was whole is retried; nobody is placed meanwhile.
    Line(drop_id=drop_id).update(actions=[Line.early_count.add(1)])
    restart = line_slices.place_slice(drop_id, time.monotonic() + 30, second["counted"])
    assert restart == {"kind": "place", "drop_id": drop_id, "counted": {"n": 0, "after": None}}
    with pytest.raises(line_slices.LineNotReadyError):
        line_slices.place_slice(drop_id, time.monotonic() + 30, restart["counted"])
    assert positions(drop_id) == []
    Line(drop_id=drop_id).update(actions=[Line.early_count.add(-1)])
    assert line_slices.place_slice(drop_id, time.monotonic() + 30, second["counted"]) is None
    assert positions(drop_id) == list(range(1, 101))


def test_the_lines_queue_places_a_big_draw_and_closes_it_once(api, shop, pushed, app_patch) -> None:
    # Slices of one transaction each: the draw of 230 entries takes three messages on the lines queue.
    # Counting the rank index takes three more (100 keys a page), each handing its count to the next.
    app_patch("chalicelib.delivery.line_slices", SLICE_SECONDS=0.0, COUNT_PAGE=100)
    drop_id, start = joined_line(api, shop, "draw", users=230, stock=5, purchase_window_seconds=60)
    assert serving.advance(drop_id, start) == 0  # hands the draw to the lines queue
    deadline = time.monotonic() + 90
    while not Line.get(drop_id, consistent_read=True).placed and time.monotonic() < deadline:
        time.sleep(0.1)
    assert positions(drop_id) == list(range(1, 231))
    assert serving.advance(drop_id, start + 1) == 5  # the winners
    assert serving.advance(drop_id, start + 1) == 0

    # The drop ends: everyone the draw never reached hears draw_lost once, by inbox and push, even
    # when the close is handed over twice and a slice runs again.
    end = start + 3_600_000
    assert serving.advance(drop_id, end) == 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda _: line_slices.close_slice(drop_id, time.monotonic() + 30), range(2)))
    line_slices.close_slice(drop_id, time.monotonic() + 30)
    # A call that finds another copy moved the progress first stops; that copy may be the lines queue's own
    # invocation (the end handed the close to it too), still at work under load: wait for it, bounded.
    wait_for(lambda: Line.get(drop_id, consistent_read=True).active is None, timeout=60)
    line = Line.get(drop_id, consistent_read=True)
    assert int(line.closed_upto) == 230 and line.active is None
    users = [e.user_id for e in Admission.query(drop_id, consistent_read=True)]
    inbox = Counter(
        (row.user_id, row.event_type)
        for user in users
        for row in Notification.query(user, consistent_read=True)
        if row.drop_id == drop_id
    )
    assert sum(1 for (_, kind) in inbox if kind == "draw_won") == 5
    assert sum(1 for (_, kind) in inbox if kind == "draw_lost") == 225
    assert set(inbox.values()) == {1}  # one row per user and kind: nobody was told twice
    lost = [(event_id, user) for event_id, kind, user in pushed if kind == "draw_lost"]
    assert len(lost) == 225 and len(set(lost)) == 225
    queued = [user for _, kind, user in pushed if kind == "queue_position"]
    assert len(queued) == 225 == len(set(queued))  # everyone beyond the stock was told their place once
