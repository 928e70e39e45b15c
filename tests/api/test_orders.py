"""POST /orders never oversells: one transaction per order, exact under concurrency, idempotent on
the Idempotency-Key, with docs/api.md's error codes; reads never show an expired reservation as pending."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.core.statuses import RELEASED, OrderStatus
from chalicelib.domain import orders, settlement
from chalicelib.schema.models import Drop, Order
from tests.support import DynamoCalls, iso, open_shop


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Sneaker", 1999)
    return owner, creator_id, product


@pytest.fixture()
def make_drop(api, shop):
    """A factory of drops of the shop's product (live from a second ago for an hour by default)."""

    def make(stock: int = 10, start: float = -1, end: float = 3600, **extra) -> dict:
        owner, creator_id, product = shop
        body = {"product_id": product["product_id"], "start_time": iso(start), "end_time": iso(end), "stock": stock}
        response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body | extra)
        assert response.status_code == 201, response.text
        return response.json()

    return make


def order(api, user, drop_id: str, quantity: int = 1, key: str | None = None, token: str = "tok_visa"):
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    body = {"drop_id": drop_id, "quantity": quantity, "payment_token": token}
    return api.post("/orders", user.token, json=body, headers=headers)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def stored_stock(drop_id: str) -> int:
    return int(Drop.get(drop_id, consistent_read=True).stock)


def orders_of_drop(drop_id: str) -> list[Order]:
    return list(Order.scan(Order.drop_id == drop_id, consistent_read=True))


def assert_invariant(drop_id: str) -> None:
    drop = Drop.get(drop_id, consistent_read=True)
    held = sum(int(o.quantity) for o in orders_of_drop(drop_id) if o.status not in RELEASED)
    assert drop.stock >= 0
    assert drop.stock + held == drop.initial_stock


def test_an_order_reserves_stock_and_reads_back(api, new_user, make_drop) -> None:
    drop = make_drop(stock=5)
    buyer = new_user()
    placed = order(api, buyer, drop["drop_id"], quantity=2)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert set(body) == {
        "order_id",
        "user_id",
        "drop_id",
        "quantity",
        "amount_cents",
        "currency",
        "status",
        "created_at",
        "expires_at",
    }
    assert body["user_id"] == buyer.user_id and body["drop_id"] == drop["drop_id"]
    assert body["quantity"] == 2 and body["amount_cents"] == 2 * 1999 and body["currency"] == "USD"
    assert body["status"] == "pending_payment" and body["expires_at"] > body["created_at"]
    assert "Idempotent-Replayed" not in placed.headers
    assert stored_stock(drop["drop_id"]) == 3

    read = api.get(f"/orders/{body['order_id']}", buyer.token).json()
    # The dev stack's payments consumer may have confirmed it already.
    assert read | {"status": "pending_payment"} == body and read["status"] in ("pending_payment", "confirmed")
    stranger = new_user()
    hidden = api.get(f"/orders/{body['order_id']}", stranger.token)
    assert hidden.status_code == 404 and error_code(hidden) == "order_not_found"
    assert api.get("/orders/or_missing", buyer.token).status_code == 404

    second = order(api, buyer, drop["drop_id"], quantity=1).json()
    first_page = api.get(f"/users/{buyer.user_id}/orders?limit=1", buyer.token).json()
    assert [o["order_id"] for o in first_page["items"]] == [second["order_id"]]
    rest = api.get(f"/users/{buyer.user_id}/orders?limit=1&page={first_page['next_page']}", buyer.token).json()
    assert [o["order_id"] for o in rest["items"]] == [body["order_id"]]
    assert api.get(f"/users/{buyer.user_id}/orders", stranger.token).status_code == 403
    foreign_page = api.get(f"/users/{stranger.user_id}/orders?page={first_page['next_page']}", stranger.token)
    assert foreign_page.status_code == 400 and error_code(foreign_page) == "invalid_page"
    assert api.post("/orders", json={"drop_id": drop["drop_id"], "quantity": 1}).status_code == 401


@pytest.mark.parametrize(
    ("quantity", "field"),
    [(0, "quantity"), (10**9, "quantity"), ("1", "quantity"), (True, "quantity"), (-1, "quantity")],
)
def test_quantity_out_of_range_is_400(api, new_user, make_drop, quantity, field) -> None:
    drop = make_drop()
    response = order(api, new_user(), drop["drop_id"], quantity=quantity)
    assert response.status_code == 400
    assert error_code(response) == "invalid_request" and field in response.json()["error"]["message"]
    assert stored_stock(drop["drop_id"]) == 10


def test_bad_requests(api, new_user, make_drop) -> None:
    drop = make_drop()
    buyer = new_user()
    body = {"drop_id": drop["drop_id"], "quantity": 1, "payment_token": "tok_visa"}
    missing = api.post("/orders", buyer.token, json=body)
    assert missing.status_code == 400 and error_code(missing) == "missing_idempotency_key"
    too_long = api.post("/orders", buyer.token, json=body, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400 and error_code(too_long) == "invalid_request"
    assert order(api, buyer, drop["drop_id"], key="k" * 255).status_code == 201
    unknown = order(api, buyer, "dr_missing")
    assert unknown.status_code == 404 and error_code(unknown) == "drop_not_found"
    extra = api.post("/orders", buyer.token, json=body | {"price": 1}, headers={"Idempotency-Key": "x"})
    assert extra.status_code == 400 and "price" in extra.json()["error"]["message"]
    no_token = api.post(
        "/orders", buyer.token, json={"drop_id": drop["drop_id"], "quantity": 1}, headers={"Idempotency-Key": "y"}
    )
    assert no_token.status_code == 400 and "payment_token" in no_token.json()["error"]["message"]


def test_the_clock_and_the_stock_decide(api, new_user, make_drop) -> None:
    buyer = new_user()
    later = make_drop(start=3600, end=7200)
    early = order(api, buyer, later["drop_id"])
    assert early.status_code == 409 and error_code(early) == "drop_not_started"

    brief = make_drop(stock=3, start=-1, end=1.5)
    assert order(api, buyer, brief["drop_id"], quantity=2).status_code == 201
    short = order(api, buyer, brief["drop_id"], quantity=2)
    assert short.status_code == 409 and error_code(short) == "insufficient_stock"
    assert "1" in short.json()["error"]["message"]
    assert order(api, buyer, brief["drop_id"]).status_code == 201
    gone = order(api, buyer, brief["drop_id"])
    assert gone.status_code == 409 and error_code(gone) == "sold_out"
    time.sleep(1.6)
    ended = order(api, buyer, brief["drop_id"])
    assert ended.status_code == 409 and error_code(ended) == "drop_ended"
    assert stored_stock(later["drop_id"]) == 10 and stored_stock(brief["drop_id"]) == 0


def test_a_thousand_concurrent_orders_sell_exactly_the_stock(api, new_user, make_drop) -> None:
    drop = make_drop(stock=100)
    buyers = [new_user() for _ in range(8)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda i: order(api, buyers[i % len(buyers)], drop["drop_id"]), range(1000)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 100
    assert statuses.count(409) == 900
    assert {error_code(r) for r in responses if r.status_code == 409} <= {"sold_out", "insufficient_stock"}
    assert stored_stock(drop["drop_id"]) == 0
    placed = orders_of_drop(drop["drop_id"])
    assert len(placed) == 100
    assert sorted(o.order_id for o in placed) == sorted(r.json()["order_id"] for r in responses if r.status_code == 201)
    assert_invariant(drop["drop_id"])


def test_one_key_sent_twenty_times_at_once_makes_one_order(api, new_user, make_drop) -> None:
    drop = make_drop(stock=50)
    buyer = new_user()
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: order(api, buyer, drop["drop_id"], quantity=2, key=key), range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert len({r.text for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    assert len(orders_of_drop(drop["drop_id"])) == 1
    assert stored_stock(drop["drop_id"]) == 48

    reused = order(api, buyer, drop["drop_id"], quantity=3, key=key)
    assert reused.status_code == 422 and error_code(reused) == "idempotency_key_reused"
    other_token = order(api, buyer, drop["drop_id"], quantity=2, key=key, token="tok_chargeDeclined")
    assert other_token.status_code == 422
    # Keys are per user: another user's same key is a new order.
    assert (
        order(api, new_user(), drop["drop_id"], quantity=2, key=key).json()["order_id"]
        != responses[0].json()["order_id"]
    )


def test_per_user_limit_sequential_and_racing(api, new_user, make_drop) -> None:
    drop = make_drop(stock=20, per_user_limit=2)
    buyer = new_user()
    assert order(api, buyer, drop["drop_id"]).status_code == 201
    assert order(api, buyer, drop["drop_id"]).status_code == 201
    third = order(api, buyer, drop["drop_id"])
    assert third.status_code == 409 and error_code(third) == "purchase_limit_exceeded"
    over = order(api, new_user(), drop["drop_id"], quantity=3)
    assert over.status_code == 409 and error_code(over) == "purchase_limit_exceeded"

    racer = new_user()
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: order(api, racer, drop["drop_id"]), range(5)))
    assert sorted(r.status_code for r in responses) == [201, 201, 409, 409, 409]
    assert {error_code(r) for r in responses if r.status_code == 409} == {"purchase_limit_exceeded"}
    assert stored_stock(drop["drop_id"]) == 16
    assert_invariant(drop["drop_id"])


def test_a_crash_after_the_commit_then_a_retry_makes_one_order(api, new_user, make_drop, stack) -> None:
    drop = make_drop(stock=5)
    buyer = new_user()
    real_count = orders.count

    def crash_after_commit(name: str, *args, **kwargs) -> None:
        if name == "OrderPlaced":
            raise RuntimeError("the Lambda died right after the transaction")
        real_count(name, *args, **kwargs)

    key = uuid.uuid4().hex
    with stack.patched("chalicelib.domain.orders", count=crash_after_commit):  # in the api's environments too
        crashed = order(api, buyer, drop["drop_id"], key=key)
    assert crashed.status_code == 500
    retried = order(api, buyer, drop["drop_id"], key=key)
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    placed = orders_of_drop(drop["drop_id"])
    assert [o.order_id for o in placed] == [retried.json()["order_id"]]
    assert stored_stock(drop["drop_id"]) == 4


def test_the_happy_path_is_one_dynamodb_call(api, new_user, make_drop, stack) -> None:
    # The drop terms cache is a module global of the api function's code (not of this process): an
    # environment reads a drop's terms at most once, then places each order of it with one call.
    environments = len(stack.pools["api"].environments) + 1  # a first order may start one more
    drop = make_drop(stock=2 * environments + 10, per_user_limit=2 * environments + 10)
    buyer = new_user()
    warm = 0
    for _ in range(environments + 1):
        with DynamoCalls() as calls:
            assert order(api, buyer, drop["drop_id"]).status_code == 201
        if calls.calls == ["TransactWriteItems"]:
            warm += 1
        else:  # a cold environment: the terms read first, once
            assert calls.calls[-1] == "TransactWriteItems" and len(calls.calls) == 2, calls.calls
    assert warm >= 1  # at most one cold order per environment
    assert stored_stock(drop["drop_id"]) == drop["stock"] - environments - 1
    with DynamoCalls() as calls:
        # One more than is left (within the 100 an order may ask for).
        assert order(api, buyer, drop["drop_id"], quantity=environments + 10).status_code == 409
    # A rejection is explained from the item DynamoDB hands back (ALL_OLD): no more calls than an order.
    assert calls.calls[-1] == "TransactWriteItems" and len(calls.calls) <= 2, calls.calls


def test_an_overdue_reservation_reads_expired_and_the_sweep_returns_its_stock(api, new_user, make_drop) -> None:
    drop = make_drop(stock=4)
    buyer = new_user()
    # A charge awaiting the buyer's action (3-D Secure) leaves the reservation pending.
    placed = order(api, buyer, drop["drop_id"], quantity=3, token="tok_threeDSecureRequired").json()
    stored = Order.get(placed["order_id"])
    after_expiry = int(stored.expires_at) + 1
    assert orders.derived_status(stored, after_expiry) == "expired"
    # Pretend the clock passed expires_at: move the reservation's deadline into the past.
    stored.update([Order.expires_at.set(int(time.time() * 1000) - 1)])
    assert api.get(f"/orders/{placed['order_id']}", buyer.token).json()["status"] == "expired"
    assert stored_stock(drop["drop_id"]) == 1

    assert settlement.expire_overdue() >= 1
    assert Order.get(placed["order_id"], consistent_read=True).status == "expired"
    assert Order.get(placed["order_id"], consistent_read=True).pending_bucket is None
    assert stored_stock(drop["drop_id"]) == 4
    # Sweeping again, or releasing the same order again, gives nothing back twice.
    settlement.expire_overdue()
    assert not settlement.release_reservation(placed["order_id"], OrderStatus.EXPIRED)
    assert stored_stock(drop["drop_id"]) == 4
    assert_invariant(drop["drop_id"])
