"""Fairness of queue and draw lines (docs/sale-modes.md): one admission is one purchase, the public entry
list is in entry-id order, racing joins of one user take one place, and a draw whose order runs out
releases its last units first-come without ever telling someone it may still pick that they lost."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.core.errors import LiveDropError
from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import lines
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop, Line, Notification
from tests.support import open_shop, place_line, place_order, sale_drop

PENDING = "tok_threeDSecureRequired"  # stays pending: the payments consumer leaves the stock alone


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Print", 2500)
    return owner, creator_id, product


def off_the_tick(drop: dict) -> tuple[str, int]:
    Line(drop_id=drop["drop_id"]).update(actions=[Line.active.remove()])
    return drop["drop_id"], parse_time("start_time", drop["start_time"])


def wait_until(moment_ms: int) -> None:
    deadline = time.monotonic() + 60
    while now_ms() < moment_ms and time.monotonic() < deadline:
        time.sleep(0.05)


def order(user: str, drop_id: str, quantity: int, token: str | None) -> str:
    try:
        return str(place_order(user, uuid.uuid4().hex, drop_id, quantity, PENDING, token).status_code)
    except LiveDropError as error:
        return error.code


def test_an_admission_admits_one_purchase_of_at_most_one_unit(api, shop) -> None:
    drop_id, start = off_the_tick(sale_drop(api, shop, "queue", 3, 6, admissions_per_second=100))
    first, second = f"u_{uuid.uuid4().hex}", f"u_{uuid.uuid4().hex}"
    lines.join_queue(first, drop_id, at_ms=start - 2000)
    lines.join_queue(second, drop_id, at_ms=start - 1000)
    serving.advance(drop_id, start)
    place_line(drop_id)
    wait_until(start)
    assert serving.advance(drop_id, start + 1000) == 2
    token = lines.my_place(first, drop_id, "queue")["admission_token"]
    # No per-user limit on a queue drop means one unit per admission.
    assert order(first, drop_id, 3, token) == "purchase_limit_exceeded"
    assert order(first, drop_id, 1, token) == "201"
    assert lines.my_place(first, drop_id, "queue")["state"] == "bought"
    # Its first purchase closed the admission, token or not.
    assert order(first, drop_id, 1, token) == "admission_required"
    # The counter's promise holds: the next admitted user still finds their unit.
    assert order(second, drop_id, 1, lines.my_place(second, drop_id, "queue")["admission_token"]) == "201"
    assert int(Drop.get(drop_id, consistent_read=True).stock) == 4


def test_the_public_entry_list_is_in_entry_id_order(api, shop) -> None:
    drop = sale_drop(api, shop, "draw", 600, 3)
    drop_id = drop["drop_id"]
    opened = parse_time("entries_open_at", drop["draw"]["entries_open_at"]) + 1
    # User ids in ascending order: a listing by user would list the entries in joining order here.
    users = [f"u_{index:03d}_{uuid.uuid4().hex[:6]}" for index in range(30)]
    entry_of = {user: lines.enter_draw(user, drop_id, at_ms=opened)[0]["entry_id"] for user in users}
    listed: list[str] = []
    page = None
    while True:
        answer = api.get(f"/drops/{drop_id}/entries?limit=7" + (f"&page={page}" if page else "")).json()
        listed += [item["entry_id"] for item in answer["items"]]
        page = answer["next_page"]
        if not page:
            break
    assert listed == sorted(entry_of.values())
    assert listed != [entry_of[user] for user in users]


def test_racing_joins_of_one_user_after_the_start_take_one_place(api, shop) -> None:
    drop_id, start = off_the_tick(sale_drop(api, shop, "queue", 2, 10))
    wait_until(start)
    racer = f"u_{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=5) as pool:
        places = list(pool.map(lambda _: lines.join_queue(racer, drop_id), range(5)))
    assert [created for _, created in places].count(True) == 1
    assert {place["position"] for place, _ in places} == {1}
    assert lines.join_queue(f"u_{uuid.uuid4().hex}", drop_id)[0]["position"] == 2
    assert lines.join_queue(f"u_{uuid.uuid4().hex}", drop_id)[0]["position"] == 3


def inbox(user: str, drop_id: str) -> list[str]:
    rows = Notification.query(user, consistent_read=True)
    return [row.event_type for row in sorted(rows, key=lambda r: r.sort_key) if row.drop_id == drop_id]


def test_an_exhausted_draw_releases_its_last_units_first_come_and_never_says_lost_first(api, shop) -> None:
    drop_id, start = off_the_tick(sale_drop(api, shop, "draw", 3, 2, purchase_window_seconds=60))
    entrants = [f"u_{uuid.uuid4().hex}" for _ in range(3)]
    for user in entrants:
        lines.enter_draw(user, drop_id, at_ms=start - 1000)
    serving.advance(drop_id, start)
    place_line(drop_id)
    assert serving.advance(drop_id, start + 1) == 2
    third = next(user for user in entrants if lines.my_place(user, drop_id, "draw")["state"] == "waiting")
    assert inbox(third, drop_id) == []  # not drawn yet is not lost: a unit may still reach them
    # The two winners let their windows lapse: the third entrant is offered a unit, then lets it lapse too.
    assert serving.advance(drop_id, start + 61_000) == 1
    assert inbox(third, drop_id) == ["draw_won"]
    assert Drop.get(drop_id, consistent_read=True).released_at is None
    assert serving.advance(drop_id, start + 122_000) == 0
    # The order is exhausted with 2 units left: they are released to first-come, and the drop says so.
    assert api.get(f"/drops/{drop_id}").json()["draw"]["released_at"] is not None
    wait_until(start)
    newcomer = f"u_{uuid.uuid4().hex}"
    assert order(newcomer, drop_id, 1, None) == "201"
    assert order(newcomer, drop_id, 1, None) == "purchase_limit_exceeded"  # a draw's limit stays 1
    # The drop's end closes the draw: nobody is told they lost (everyone was offered a unit).
    serving.advance(drop_id, start + 3_600_000)
    deadline = time.monotonic() + 60
    while Line.get(drop_id, consistent_read=True).active is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all("draw_lost" not in inbox(user, drop_id) for user in entrants)
