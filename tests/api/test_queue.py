"""Queue drops: a waiting room whose pre-start joiners get random positions, a serving counter that
admits at a set rate and never beyond the stock, and signed admission tokens that POST /orders requires."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.sync.client import connect

from chalicelib.core.errors import LiveDropError
from chalicelib.core.statuses import RELEASED
from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import admissions, lines
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Admission, Drop, Line, Order
from tests.support import each_accepted, open_shop, place_line, place_order, sale_drop

TOKEN = "tok_threeDSecureRequired"  # stays pending: the payments consumer leaves the stock alone


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Console", 49900)
    return owner, creator_id, product


def queue_drop(api, shop, start: float, stock: int = 50, **settings) -> dict:
    return sale_drop(api, shop, "queue", start, stock, **settings)


def take_line_off_the_tick(drop_id: str) -> None:
    """The test drives this line's clock itself: the dev stack's admissions tick no longer sees it."""
    Line(drop_id=drop_id).update(actions=[Line.active.remove()])


def wait_for_start(start_ms: int) -> None:
    deadline = time.monotonic() + 60
    while now_ms() < start_ms and time.monotonic() < deadline:
        time.sleep(0.05)


def entries(drop_id: str) -> dict[str, Admission]:
    return {entry.user_id: entry for entry in Admission.query(drop_id, consistent_read=True)}


def admitted_positions(drop_id: str) -> set[int]:
    return {int(e.position) for e in entries(drop_id).values() if e.admitted_at is not None}


def order(user_id: str, drop_id: str, token: str | None) -> str:
    try:
        return str(place_order(user_id, uuid.uuid4().hex, drop_id, 1, TOKEN, token).status_code)
    except LiveDropError as error:
        return error.code


def assert_invariant(drop: dict) -> None:
    stored = Drop.get(drop["drop_id"], consistent_read=True)
    placed = Order.scan(Order.drop_id == drop["drop_id"], consistent_read=True)
    held = sum(int(o.quantity) for o in placed if o.status not in RELEASED)
    assert int(stored.stock) >= 0 and int(stored.stock) + held == drop["initial_stock"]


def test_two_hundred_users_queue_and_are_served_in_a_random_order_by_the_counter(api, shop) -> None:
    drop = queue_drop(api, shop, start=8, stock=50, admissions_per_second=10, purchase_window_seconds=600)
    drop_id = drop["drop_id"]
    take_line_off_the_tick(drop_id)
    start = parse_time("start_time", drop["start_time"])
    users = [f"u_{index:03d}_{uuid.uuid4().hex[:8]}" for index in range(200)]

    # Everyone joins before the start, one after the other: arrival order is the list order.
    for index, user in enumerate(users):
        place, created = lines.join_queue(user, drop_id, at_ms=start - 5000 + index)
        assert created and place["position"] is None and place["state"] == "waiting"
    again, created = lines.join_queue(users[0], drop_id, at_ms=start - 100)
    assert not created and again["position"] is None

    assert serving.advance(drop_id, start) == 0  # seals the line and hands its placing to the lines queue
    place_line(drop_id)
    late, created = lines.join_queue("u_late", drop_id, at_ms=start + 10)
    assert created and late["position"] == 201
    joined = entries(drop_id)
    positions = [int(joined[user].position) for user in users]
    assert sorted(positions) == list(range(1, 201))  # a permutation
    assert positions != list(range(1, 201))  # not arrival order
    by_position = {int(e.position): e.user_id for e in joined.values()}

    # Admission follows the counter: 10 admissions per second since the start.
    assert serving.advance(drop_id, start + 1000) == 10
    assert admitted_positions(drop_id) == set(range(1, 11))
    assert int(Line.get(drop_id, consistent_read=True).serving) == 10
    assert serving.advance(drop_id, start + 1000) == 0  # nobody admitted twice
    assert serving.advance(drop_id, start + 1500) == 5
    assert admitted_positions(drop_id) == set(range(1, 16))

    wait_for_start(start)
    first, eleventh = by_position[1], by_position[16]
    first_place = lines.place_view(Drop.get(drop_id), joined[first], now_ms())
    assert first_place["state"] == "waiting"  # the snapshot above predates the admission
    token = lines.my_place(first, drop_id, "queue")["admission_token"]
    assert order(first, drop_id, None) == "admission_required"
    assert order(first, drop_id, token + "x") == "admission_required"
    assert order(eleventh, drop_id, token) == "admission_required"  # another user's token
    expired = admissions.issue_token(first, drop_id, now_ms() - 1)
    assert order(first, drop_id, expired) == "admission_expired"
    # A well-signed token for someone the counter has not reached: the transaction finds no admission.
    assert order(eleventh, drop_id, admissions.issue_token(eleventh, drop_id, now_ms() + 60_000)) == (
        "admission_required"
    )
    assert order(first, drop_id, token) == "201"

    # The counter never admits more people than the stock can serve: 49 units left, 14 admitted unused.
    assert serving.advance(drop_id, start + 10_000) == 35
    assert admitted_positions(drop_id) == set(range(1, 51))
    # Windows pass unused: their slots are freed and the next positions come in, none twice.
    assert serving.advance(drop_id, start + 620_000) == 49
    assert admitted_positions(drop_id) == set(range(1, 100))
    assert serving.advance(drop_id, start + 620_000) == 0
    assert int(Line.get(drop_id, consistent_read=True).settled) == 50
    assert_invariant(drop)


def test_queue_orders_and_the_stock_invariant_under_concurrency(api, shop) -> None:
    drop = queue_drop(api, shop, start=3, stock=20, admissions_per_second=1000)
    drop_id = drop["drop_id"]
    take_line_off_the_tick(drop_id)
    start = parse_time("start_time", drop["start_time"])
    users = [f"u_{uuid.uuid4().hex}" for _ in range(40)]
    # (A join refused because the line's counters were busy is tried again, as a client does.)
    each_accepted(lambda user: lines.join_queue(user, drop_id, at_ms=start - 1000), users)
    serving.advance(drop_id, start)
    place_line(drop_id)
    wait_for_start(start)
    assert serving.advance(drop_id, start + 1000) == 20
    tokens = {user: lines.my_place(user, drop_id, "queue")["admission_token"] for user in users}
    admitted = [user for user, token in tokens.items() if token]
    assert len(admitted) == 20
    # Every admitted user orders twice at once, and everyone else tries without being admitted.
    attempts = [(user, tokens[user]) for user in admitted] * 2 + [(user, None) for user in users if not tokens[user]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda attempt: order(attempt[0], drop_id, attempt[1]), attempts))
    assert outcomes.count("201") == 20
    # An admission admits one purchase: a second order with it is refused, whichever check comes first.
    assert set(outcomes) - {"201"} <= {"admission_required", "sold_out"}
    assert outcomes.count("admission_required") >= 20
    assert int(Drop.get(drop_id, consistent_read=True).stock) == 0
    assert_invariant(drop)


def frames_until(ws, kind: str, deadline: float) -> list[dict]:
    """Frames received until one of `kind` arrives (or the deadline passes)."""
    received: list[dict] = []
    while time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        received.append(frame)
        if frame.get("type") == kind:
            break
    return received


def test_queue_routes_and_the_dev_stacks_tick(api, new_user, shop, stack) -> None:
    fan, stranger = new_user(), new_user()
    drop = queue_drop(api, shop, start=5, stock=5, admissions_per_second=100)
    drop_id = drop["drop_id"]
    ws = connect(f"{stack.ws_url}?token={fan.token}", open_timeout=10, legacy=True)
    ws.send(json.dumps({"action": "ping"}))
    assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}  # the socket is served: pushes reach it
    joined = api.post(f"/drops/{drop_id}/queue", fan.token)
    assert joined.status_code == 201, joined.text
    assert joined.json()["state"] == "waiting"
    assert api.post(f"/drops/{drop_id}/queue", fan.token).status_code == 200
    assert api.get(f"/drops/{drop_id}/queue/me", stranger.token).json()["error"]["code"] == "not_in_line"
    assert api.post(f"/drops/{drop_id}/entries", fan.token).json()["error"]["code"] == "wrong_sale_mode"
    body = {"drop_id": drop_id, "quantity": 1, "payment_token": TOKEN}
    refused = api.post("/orders", fan.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admission_required"

    # The dev stack's pump ticks the line: seal and order it at the start, then admit.
    deadline = time.monotonic() + 60
    place = api.get(f"/drops/{drop_id}/queue/me", fan.token).json()
    while place["state"] != "admitted" and time.monotonic() < deadline:
        time.sleep(0.2)
        place = api.get(f"/drops/{drop_id}/queue/me", fan.token).json()
    assert place["state"] == "admitted" and place["position"] == 1 and place["serving"] >= 1
    with ws:
        pushed = frames_until(ws, "admitted", time.monotonic() + 30)
    # Joined before the start: told the position when the line is ordered; after it: in the answer.
    told = [("queue_position", 1)] if joined.json()["position"] is None else []
    assert [(f["type"], f["data"].get("position")) for f in pushed] == [*told, ("admitted", 1)]
    admitted = [f for f in pushed if f["type"] == "admitted"]
    assert admitted and admitted[0]["data"]["admission_token"] == place["admission_token"]
    bought = api.post(
        "/orders",
        fan.token,
        json=body | {"admission_token": place["admission_token"]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert bought.status_code == 201, bought.text


def test_joins_over_the_limit_get_429(api, shop) -> None:
    drop = queue_drop(api, shop, start=600)
    user = f"u_{uuid.uuid4().hex}"
    now = now_ms()
    codes = []
    for _ in range(40):
        try:
            lines.join_queue(user, drop["drop_id"], at_ms=now)
            codes.append("ok")
        except LiveDropError as error:
            codes.append(error.code)
            break
    assert codes[-1] == "rate_limited" and len(codes) > 1
    assert lines.join_queue(f"u_{uuid.uuid4().hex}", drop["drop_id"], at_ms=now)[1]  # others unaffected


def test_a_queue_is_joined_only_in_its_window(api, shop) -> None:
    drop = queue_drop(api, shop, start=600, queue_opens_before_seconds=60)
    start = parse_time("start_time", drop["start_time"])
    with pytest.raises(LiveDropError) as early:
        lines.join_queue(f"u_{uuid.uuid4().hex}", drop["drop_id"], at_ms=start - 61_000)
    assert early.value.code == "line_not_open"
    with pytest.raises(LiveDropError) as late:
        lines.join_queue(f"u_{uuid.uuid4().hex}", drop["drop_id"], at_ms=start + 3_600_000)
    assert late.value.code == "line_closed"
