"""Notifications end to end on the dev stack: real orders and drops, the real event chain, real sockets."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from websockets.sync.client import connect

from chalicelib.core.config import get_settings
from chalicelib.domain import connections
from chalicelib.schema.models import Connection, Subscription
from tests.e2e.support import Crowd, follow_all, make_drop, make_fans, make_shop, parse_iso, send_envelope

pytestmark = pytest.mark.e2e


def place(api, token: str, drop_id: str, payment_token: str = "tok_visa"):
    body = {"drop_id": drop_id, "quantity": 1, "payment_token": payment_token}
    return api.post("/orders", token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def frames_until(ws, done, timeout: float = 20.0) -> list[dict]:
    """Frames from a sync socket until `done(frames)` holds (or the timeout passes)."""
    frames: list[dict] = []
    deadline = time.time() + timeout
    while not done(frames) and time.time() < deadline:
        try:
            frames.append(json.loads(ws.recv(timeout=max(0.05, deadline - time.time()))))
        except TimeoutError:
            break
    return frames


def quiet_for(ws, seconds: float) -> list[dict]:
    """Whatever else arrives within `seconds`."""
    return frames_until(ws, lambda _: False, seconds)


def inbox(api, user) -> list[dict]:
    response = api.get(f"/users/{user.user_id}/notifications?limit=100", user.token)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _sqs():
    settings = get_settings()
    return boto3.session.Session().client("sqs", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)


def test_drop_started_reaches_200_online_followers_exactly_once(stack, api, new_user) -> None:
    owner = new_user(name="Star")
    creator_id, product_id = make_shop(api, owner.token)
    fans = make_fans(200)
    follow_all(fans, creator_id)
    crowd = Crowd(stack.ws_url)
    (slices,) = [p for p in stack.pumps if p.name == f"queue:{get_settings().table_prefix}push_slices"]
    slices_before = slices.batches
    # In slices of 60, as a big audience is: the first by the invocation that reads the audience, three more
    # by other fanout invocations meanwhile, each its own (notifications.push_in_slices).
    with stack.patched("chalicelib.delivery.notifications", DROP_PUSH_SLICE=60):
        try:
            crowd.connect([fan.token for fan in fans])
            drop = make_drop(api, owner.token, creator_id, product_id, start=2.0)
            start = parse_iso(drop["start_time"])
            everyone = range(len(fans))
            assert crowd.wait_for(lambda: all(crowd.of_type(i, "drop_started") for i in everyone), timeout=20)
            last = max(crowd.of_type(i, "drop_started")[0].at for i in everyone)
            time.sleep(1.0)  # room for a duplicate to show up
            assert [len(crowd.of_type(i, "drop_started")) for i in everyone] == [1] * len(fans)
            frame = crowd.of_type(0, "drop_started")[0].frame
            assert frame["data"]["drop_id"] == drop["drop_id"] and frame["event_id"] and frame["occurred_at"]
            delay = last - start
            print(f"\ndrop_started to {len(fans)} followers: last frame {delay * 1000:.0f} ms after start_time")
            # How soon is a speed target, measured by `make bench` (bench/notifications.py), not here: this
            # suite must pass on a slower machine. What holds everywhere: nobody is told before the start.
            first = min(crowd.of_type(i, "drop_started")[0].at for i in everyone)
            assert first >= start
            # The three queued slices came one to an invocation, not ten to one.
            assert slices.batches - slices_before >= 3
        finally:
            crowd.close()
        # Offline or not, every follower has it in the inbox (written just after the pushes).
        deadline, rows = time.time() + 60, []
        while not rows and time.time() < deadline:
            rows = api.get(f"/users/{fans[7].user_id}/notifications", fans[7].token).json()["items"]
            time.sleep(0.2)
        assert [(r["type"], r["drop_id"]) for r in rows] == [("drop_started", drop["drop_id"])]


def test_order_outcomes_reach_both_buyer_sockets_and_the_inbox_once(stack, api, new_user) -> None:
    owner = new_user()
    creator_id, product_id = make_shop(api, owner.token)
    drop = make_drop(api, owner.token, creator_id, product_id, start=-1)
    buyer = new_user()
    with connect(f"{stack.ws_url}?token={buyer.token}") as one, connect(f"{stack.ws_url}?token={buyer.token}") as two:
        paid = place(api, buyer.token, drop["drop_id"], "tok_visa")
        declined = place(api, buyer.token, drop["drop_id"], "tok_chargeDeclined")
        assert paid.status_code == declined.status_code == 201
        expected = {("order_confirmed", paid.json()["order_id"]), ("order_failed", declined.json()["order_id"])}
        seen = []
        for ws in (one, two):
            frames = frames_until(ws, lambda fs: {(f["type"], f["data"].get("order_id")) for f in fs} >= expected)
            assert {(f["type"], f["data"].get("order_id")) for f in frames} == expected
            seen.append(frames)
        confirmed = next(f for f in seen[0] if f["type"] == "order_confirmed")
        assert confirmed["data"]["drop_id"] == drop["drop_id"] and "user_id" not in confirmed["data"]

        # The same event delivered twice more once it was handled: no second frame, no second inbox row.
        # Handled means its row is written, just after its push (a copy racing the first invocation, before
        # the row, may push again: at least once, docs/api.md); SQS redelivers only after a visibility timeout.
        deadline = time.time() + 20
        handled = ("order_confirmed", paid.json()["order_id"])
        while handled not in {(r["type"], r["order_id"]) for r in inbox(api, buyer)}:
            assert time.time() < deadline, "the confirmation's inbox row was never written"
            time.sleep(0.1)
        data = {"order_id": paid.json()["order_id"], "user_id": buyer.user_id, "drop_id": drop["drop_id"]}
        send_envelope(
            "order_confirmed", data, event_id=confirmed["event_id"], times=2, occurred_at=confirmed["occurred_at"]
        )
        assert quiet_for(one, 2.0) == []
        # A new event arriving twice at once: one row. Two copies in one batch push once; copies taken by two
        # invocations at the same moment may both push (delivery is at least once, docs/api.md), so the frames
        # are that one event, once or twice, for a client to tell apart by its event_id.
        twice = send_envelope("order_expired", {**data, "order_id": "or_twice"}, times=2)
        assert [f["event_id"] for f in quiet_for(two, 3.0)] in ([twice["event_id"]], [twice["event_id"]] * 2)
    expected.add(("order_expired", "or_twice"))
    rows = inbox(api, buyer)
    assert sorted((r["type"], r["order_id"]) for r in rows) == sorted(expected)
    assert all(r["read"] is False and r["drop_id"] == drop["drop_id"] and r["created_at"] for r in rows)
    assert len(rows) == 3
    other = new_user()
    assert api.get(f"/users/{buyer.user_id}/notifications", other.token).status_code == 403
    assert api.get(f"/users/{buyer.user_id}/notifications").status_code == 401


def test_a_burst_of_300_orders_reaches_40_viewers_coalesced(stack, api, new_user) -> None:
    owner = new_user()
    creator_id, product_id = make_shop(api, owner.token)
    drop = make_drop(api, owner.token, creator_id, product_id, start=-1, stock=300)
    drop_id = drop["drop_id"]
    viewers, buyers = make_fans(40), make_fans(30)
    crowd = Crowd(stack.ws_url)
    try:
        crowd.connect([v.token for v in viewers])
        crowd.send_all({"action": "subscribe", "drop_id": drop_id})
        assert crowd.wait_for(lambda: all(crowd.of_type(i, "subscribed") for i in range(40)), timeout=60)
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda b: place(api, b.token, drop_id).status_code, buyers * 10))
        assert statuses.count(201) == 300, statuses

        def settled(i: int) -> bool:
            stock = crowd.of_type(i, "stock_changed")
            return bool(crowd.of_type(i, "sold_out")) and bool(stock) and stock[-1].frame["data"]["stock"] == 0

        done = crowd.wait_for(lambda: all(settled(i) for i in range(40)), timeout=60)
        assert done, [(r.frame["type"], r.frame.get("data", {}).get("stock")) for r in crowd.frames[0]][-12:]
        time.sleep(1.5)
        pushes = [len(crowd.of_type(i, "stock_changed")) for i in range(40)]
        print(f"\n300 orders -> stock_changed frames per viewer: min {min(pushes)}, max {max(pushes)}")
        assert max(pushes) <= 40  # ~4/s over the burst, not one per order
        for i in range(40):
            assert crowd.of_type(i, "stock_changed")[-1].frame["data"] == {"drop_id": drop_id, "stock": 0}
            assert len(crowd.of_type(i, "sold_out")) == 1
    finally:
        crowd.close()


def test_a_gone_connection_is_removed_on_the_first_failed_push_and_the_rest_still_get_it(stack, new_user) -> None:
    buyer = new_user()
    ghosts = [f"ghost{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for ghost in ghosts:  # sockets whose $disconnect never reached us: stored and counted as $connect does
        assert connections._claim(ghost, buyer.user_id) is None
        Subscription(drop_id="dr_ghosts", connection_id=ghost).save()
    with connect(f"{stack.ws_url}?token={buyer.token}") as ws:
        sent = send_envelope("order_confirmed", {"order_id": "or_g1", "user_id": buyer.user_id, "drop_id": "dr_g"})
        frames = frames_until(ws, lambda fs: bool(fs))
        assert [f["event_id"] for f in frames] == [sent["event_id"]]
    # The push reports after every post is done, ghosts' clean-up included; the live frame may come first.
    deadline = time.time() + 30
    while time.time() < deadline and any(c.connection_id in ghosts for c in Connection.by_user.query(buyer.user_id)):
        time.sleep(0.05)
    assert not any(c.connection_id in ghosts for c in Connection.by_user.query(buyer.user_id))
    assert list(Subscription.query("dr_ghosts")) == []


def test_a_poison_message_ends_in_the_dlq_and_the_rest_are_delivered(stack, new_user) -> None:
    buyer = new_user()
    poison = f"poison {uuid.uuid4().hex}"
    sqs = _sqs()
    sqs.send_message(QueueUrl=get_settings().queue_url("notify"), MessageBody=poison)
    with connect(f"{stack.ws_url}?token={buyer.token}") as ws:
        sent = send_envelope("order_failed", {"order_id": "or_p1", "user_id": buyer.user_id, "drop_id": "dr_p"})
        assert [f["event_id"] for f in frames_until(ws, lambda fs: bool(fs))] == [sent["event_id"]]
    dlq = get_settings().queue_url("notify-dlq")
    deadline, found = time.time() + 120, False
    while not found and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0)
        found = any(m["Body"] == poison for m in got.get("Messages", []))
        time.sleep(0.5)
    assert found


def test_notifications_held_up_by_a_fanout_outage_arrive_once_after_it(stack, api, new_user) -> None:
    owner = new_user()
    creator_id, product_id = make_shop(api, owner.token)
    drop = make_drop(api, owner.token, creator_id, product_id, start=-1, stock=20)
    buyer = new_user()
    failures: list[str] = []

    def broken(event, *_, **__) -> None:  # as consumers.fan_out is called: an order event with its buyer's sockets
        failures.append(event.event_type)
        raise RuntimeError("fan-out is down")

    # The outage's length decides which step of the backoff the held messages are on when it ends; the
    # schedule itself (minutes apart) is a unit test's (test_back_office). Seconds apart here, the
    # messages come back soon after the outage instead of a minute or two later.
    quick_retries = stack.patched("chalicelib.schema.retries", RETRY_DELAYS=(1, 2, 3, 5, 5, 10, 10, 15, 15))
    with connect(f"{stack.ws_url}?token={buyer.token}") as ws, quick_retries:
        fanout_down = stack.patched("chalicelib.delivery.consumers", fan_out=broken)  # in the fanout's environments
        with fanout_down:
            placed = [place(api, buyer.token, drop["drop_id"]) for _ in range(5)]
            assert [p.status_code for p in placed] == [201] * 5
            order_ids = {p.json()["order_id"] for p in placed}
            # Bounded by the events awaited, with room for a slow machine.
            deadline = time.time() + 120
            while time.time() < deadline:
                statuses = {api.get(f"/orders/{oid}", buyer.token).json()["status"] for oid in order_ids}
                if statuses == {"confirmed"} and "order_confirmed" in failures:
                    break
                time.sleep(0.2)
            assert statuses == {"confirmed"}
            assert quiet_for(ws, 0.5) == []
        frames = frames_until(ws, lambda fs: {f["data"]["order_id"] for f in fs} >= order_ids, timeout=120)
        frames += quiet_for(ws, 1.5)
    assert sorted(f["data"]["order_id"] for f in frames) == sorted(order_ids)
    assert {f["type"] for f in frames} == {"order_confirmed"}
    assert sorted(r["order_id"] for r in inbox(api, buyer)) == sorted(order_ids)
