"""Draw drops: one entry per user in a window, winners chosen by a committed seed that anyone can check,
purchase windows, unclaimed units passing on in draw order, and everyone told the result.

The recomputation below deliberately uses only hashlib and the published data, never chalicelib.core.draws.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest

from chalicelib.core.errors import LiveDropError
from chalicelib.core.statuses import RELEASED
from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import lines
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Admission, Drop, Line, Notification, Order
from tests.support import each_accepted, open_shop, place_line, place_order, sale_drop

TOKEN = "tok_threeDSecureRequired"


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Limited print", 9900)
    return owner, creator_id, product


def draw_drop(api, shop, start: float, stock: int, **settings) -> dict:
    return sale_drop(api, shop, "draw", start, stock, **settings)


def published_entries(api, drop_id: str) -> list[dict]:
    found: list[dict] = []
    page = None
    while True:
        response = api.get(f"/drops/{drop_id}/entries?limit=100" + (f"&page={page}" if page else ""))
        assert response.status_code == 200, response.text
        found += response.json()["items"]
        page = response.json()["next_page"]
        if not page:
            return found


def recomputed_order(seed: str, entry_ids: list[str]) -> list[str]:
    """docs/sale-modes.md: sort the entry ids by sha256("<seed>:<entry_id>") in hex, then by entry id."""
    scored = [(hashlib.sha256((seed + ":" + entry_id).encode("ascii")).hexdigest(), entry_id) for entry_id in entry_ids]
    return [entry_id for _, entry_id in sorted(scored)]


def admitted_entry_ids(drop_id: str) -> set[str]:
    return {str(e.ticket) for e in Admission.query(drop_id, consistent_read=True) if e.admitted_at is not None}


def inbox_types(user_id: str, drop_id: str) -> list[str]:
    return [row.event_type for row in Notification.query(user_id, consistent_read=True) if row.drop_id == drop_id]


def test_five_hundred_entries_fifty_units_winners_anyone_can_recompute(api, shop) -> None:
    drop = draw_drop(api, shop, start=20, stock=50, purchase_window_seconds=600)
    drop_id = drop["drop_id"]
    Line(drop_id=drop_id).update(actions=[Line.active.remove()])  # the test drives this line's clock
    start = parse_time("start_time", drop["start_time"])
    commitment = drop["draw"]["commitment"]
    users = [f"u_{uuid.uuid4().hex}" for _ in range(500)]
    entered_at = parse_time("entries_open_at", drop["draw"]["entries_open_at"]) + 1
    # Eight at once on one line's counters contend, as in DynamoDB: an entry told to try again is retried.
    results = each_accepted(lambda user: lines.enter_draw(user, drop_id, at_ms=entered_at), users)
    assert all(created for _, created in results)
    entry_of = {user: place["entry_id"] for user, (place, _) in zip(users, results, strict=True)}

    # One entry per user: a repeat changes nothing. Outside the window: refused.
    repeat, created = lines.enter_draw(users[0], drop_id, at_ms=entered_at + 5)
    assert not created and repeat["entry_id"] == entry_of[users[0]]
    for at_ms, code in ((entered_at - 10, "line_not_open"), (start, "line_closed")):
        with pytest.raises(LiveDropError) as refused:
            lines.enter_draw(f"u_{uuid.uuid4().hex}", drop_id, at_ms=at_ms)
        assert refused.value.code == code
    assert len(published_entries(api, drop_id)) == 500  # five pages, whose tokens name no user
    first_page = api.get(f"/drops/{drop_id}/entries?limit=100").json()["next_page"]
    opened = base64.urlsafe_b64decode(first_page + "=" * (-len(first_page) % 4))
    assert not any(user.encode() in opened for user in users)
    assert api.get(f"/drops/{drop_id}").json()["draw"]["seed"] is None

    assert serving.advance(drop_id, start) == 0  # the draw: handed to the lines queue
    place_line(drop_id)  # positions, then the seed, are published
    assert serving.advance(drop_id, start + 1) == 50  # the winners' purchase windows open
    published = api.get(f"/drops/{drop_id}").json()["draw"]
    seed = published["seed"]
    assert published["commitment"] == commitment
    assert hashlib.sha256(seed.encode("ascii")).hexdigest() == commitment
    listed = published_entries(api, drop_id)
    order = recomputed_order(seed, [entry["entry_id"] for entry in listed])
    assert [entry["entry_id"] for entry in sorted(listed, key=lambda e: e["position"])] == order
    assert admitted_entry_ids(drop_id) == set(order[:50])  # exactly 50 winners, the recomputed ones

    user_of = {entry_id: user for user, entry_id in entry_of.items()}
    winners = [user_of[entry_id] for entry_id in order[:50]]
    assert inbox_types(winners[0], drop_id) == ["draw_won"]
    # Not drawn yet is not lost: a unit left unclaimed may still reach them.
    assert inbox_types(user_of[order[50]], drop_id) == []
    assert inbox_types(user_of[order[-1]], drop_id) == []

    # Ten winners buy; the other forty let their window pass, and their units go to the next forty.
    deadline = time.monotonic() + 60
    while now_ms() < start and time.monotonic() < deadline:
        time.sleep(0.05)
    for winner in winners[:10]:
        token = lines.my_place(winner, drop_id, "draw")["admission_token"]
        assert place_order(winner, uuid.uuid4().hex, drop_id, 1, TOKEN, token).status_code == 201
    loser = user_of[order[50]]
    assert lines.my_place(loser, drop_id, "draw")["admission_token"] is None
    assert serving.advance(drop_id, start + 300_000) == 0  # windows still open: nothing passes on
    assert serving.advance(drop_id, start + 601_001) == 40
    assert admitted_entry_ids(drop_id) == set(order[:90])
    assert inbox_types(loser, drop_id) == ["draw_won"]  # offered a unit, never told it lost first
    assert serving.advance(drop_id, start + 601_001) == 0

    stored = Drop.get(drop_id, consistent_read=True)
    placed = Order.scan(Order.drop_id == drop_id, consistent_read=True)
    assert int(stored.stock) + sum(int(o.quantity) for o in placed if o.status not in RELEASED) == 50


def test_draw_routes(api, new_user, shop) -> None:
    drop = draw_drop(api, shop, start=600, stock=3)
    drop_id = drop["drop_id"]
    fan = new_user()
    first = api.post(f"/drops/{drop_id}/entries", fan.token)
    assert first.status_code == 201, first.text
    again = api.post(f"/drops/{drop_id}/entries", fan.token)
    assert again.status_code == 200 and again.json()["entry_id"] == first.json()["entry_id"]
    mine = api.get(f"/drops/{drop_id}/entries/me", fan.token).json()
    assert mine["state"] == "waiting" and mine["position"] is None and mine["admission_token"] is None
    assert api.get(f"/drops/{drop_id}/entries").json()["items"] == [
        {"entry_id": first.json()["entry_id"], "position": None}
    ]
    assert api.post(f"/drops/{drop_id}/queue", fan.token).json()["error"]["code"] == "wrong_sale_mode"
    assert api.get("/drops/dr_nope/entries").status_code == 404
    forged = api.get(f"/drops/{drop_id}/entries?page=eyJ1c2VyX2lkIjoieCJ9")
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_page"
    body = {"drop_id": drop_id, "quantity": 1, "payment_token": TOKEN}
    refused = api.post("/orders", fan.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admission_required"
