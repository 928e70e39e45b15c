"""A creator is told of their own drop's start, low stock and sell-out, through the whole pipeline: real
drops, the real streams and queues, real sockets and the inbox read through the API."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from websockets.sync.client import connect

from tests.e2e.support import make_drop, make_shop
from tests.e2e.test_notifications_flow import frames_until, inbox, quiet_for

pytestmark = pytest.mark.e2e

OWN_NEWS = ("drop_started", "stock_low", "sold_out")


def own_frames(frames: list[dict], drop_id: str) -> Counter[str]:
    return Counter(f["type"] for f in frames if f["type"] in OWN_NEWS and f["data"].get("drop_id") == drop_id)


def wait_until_live(api, drop_id: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while api.get(f"/drops/{drop_id}").json().get("status") != "live":
        assert time.time() < deadline, f"{drop_id} never went live"
        time.sleep(0.3)


def rows_until(api, user, count: int, timeout: float = 90.0) -> list[dict]:
    deadline = time.time() + timeout
    rows = inbox(api, user)
    while len(rows) < count and time.time() < deadline:
        time.sleep(0.3)
        rows = inbox(api, user)
    return rows


def test_the_owner_hears_of_their_own_drops_start_low_stock_and_sell_out_once_each(stack, api, new_user) -> None:
    loner, fan_of_self, buyer = new_user(name="Loner"), new_user(name="Self fan"), new_user(name="Buyer")
    drops = {}
    with (
        connect(f"{stack.ws_url}?token={loner.token}") as loner_ws,
        connect(f"{stack.ws_url}?token={fan_of_self.token}") as self_ws,
    ):
        for owner in (loner, fan_of_self):
            creator_id, product_id = make_shop(api, owner.token)
            if owner is fan_of_self:
                assert api.post(f"/creators/{creator_id}/follow", owner.token).status_code == 200
            drop = make_drop(api, owner.token, creator_id, product_id, start=2.0, stock=2, low_stock_threshold=1)
            drops[owner.user_id] = drop["drop_id"]
        for owner in (loner, fan_of_self):
            wait_until_live(api, drops[owner.user_id])
            # Both units in one order: the stock falls past the threshold and out at once.
            order = {"drop_id": drops[owner.user_id], "quantity": 2, "payment_token": "tok_visa"}
            placed = api.post("/orders", buyer.token, json=order, headers={"Idempotency-Key": uuid.uuid4().hex})
            assert placed.status_code == 201, placed.text
        for owner, ws in ((loner, loner_ws), (fan_of_self, self_ws)):
            drop_id = drops[owner.user_id]
            frames = frames_until(ws, lambda fs, d=drop_id: set(own_frames(fs, d)) == set(OWN_NEWS), timeout=90)
            frames += quiet_for(ws, 1.0)  # room for a duplicate to show up
            assert own_frames(frames, drop_id) == Counter(OWN_NEWS), frames

    for owner in (loner, fan_of_self):
        drop_id = drops[owner.user_id]
        # The owner who follows themselves is also in a follower slice: it rewrites the same rows (same
        # keys), so there is one row per event either way (tests/unit/domain/test_owner_notifications.py
        # runs the slices to the end).
        rows = rows_until(api, owner, len(OWN_NEWS))
        assert sorted(r["type"] for r in rows) == sorted(OWN_NEWS), rows
        assert {r["drop_id"] for r in rows} == {drop_id}
        low = next(r for r in rows if r["type"] == "stock_low")
        assert low["data"]["stock"] == 0 and low["data"]["drop_id"] == drop_id
    # The buyer follows no one: their inbox holds only their own order's outcome.
    assert {r["type"] for r in inbox(api, buyer)} <= {"order_confirmed", "order_failed"}
