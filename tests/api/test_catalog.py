"""Products and drops: ownership, validation, lifecycle on the Scheduler, status from the clock,
cached reads with ETags."""

from __future__ import annotations

import time
from datetime import datetime

import boto3
import pytest

from chalicelib.core.config import get_settings
from chalicelib.domain import scheduling
from chalicelib.schema.models import Drop
from devstack.identity import REGION
from tests.support import DynamoCalls, iso, open_shop


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Tee", 2500)
    return owner, creator_id, product


def make_drop(api, shop, start: float, end: float, stock: int = 10, **extra) -> dict:
    owner, creator_id, product = shop
    body = {"product_id": product["product_id"], "start_time": iso(start), "end_time": iso(end), "stock": stock}
    response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body | extra)
    assert response.status_code == 201, response.text
    return response.json()


def test_product_and_drop_as_owner(api, shop) -> None:
    owner, creator_id, product = shop
    assert product["status"] == "draft"
    assert product["price_cents"] == 2500 and product["currency"] == "USD"
    assert api.get(f"/products/{product['product_id']}").json() == product
    drop = make_drop(api, shop, 60, 3600, stock=50, per_user_limit=2, low_stock_threshold=5)
    assert drop["status"] == "scheduled"
    assert drop["stock"] == drop["initial_stock"] == 50
    assert drop["price_cents"] == 2500 and drop["per_user_limit"] == 2 and drop["low_stock_threshold"] == 5
    assert api.get(f"/drops/{drop['drop_id']}").json() == drop
    assert api.get(f"/products/{product['product_id']}").json()["status"] == "scheduled"


def test_another_user_may_not_sell_for_a_creator(api, new_user, shop) -> None:
    _, creator_id, product = shop
    intruder = new_user(creator=True)
    body = {"name": "x", "price_cents": 1, "currency": "USD"}
    assert api.post(f"/creators/{creator_id}/products", intruder.token, json=body).status_code == 403
    drop = {"product_id": product["product_id"], "start_time": iso(10), "end_time": iso(20), "stock": 1}
    assert api.post(f"/creators/{creator_id}/drops", intruder.token, json=drop).status_code == 403
    intruder_creator = api.get("/me", intruder.token).json()["creator_id"]
    mine = api.post(f"/creators/{intruder_creator}/drops", intruder.token, json=drop)
    assert mine.status_code == 403  # someone else's product
    assert api.post(f"/creators/{creator_id}/products", json=body).status_code == 401
    assert api.post("/creators/cr_nope/products", intruder.token, json=body).status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        # One example of the domain's time and stock rules (all of them: tests/unit/domain/test_drops.py).
        {"start_time": iso(100), "end_time": iso(50)},
        {"start_time": "tomorrow"},
        {"start_time": "2030-01-01T00:00:00"},
        {"stock": 0},
        {"stock": 1_000_001},
        {"stock": "10"},
        {"per_user_limit": 0},
        {"surprise": True},
    ],
)
def test_invalid_drops_are_400(api, shop, change) -> None:
    owner, creator_id, product = shop
    body = {"product_id": product["product_id"], "start_time": iso(10), "end_time": iso(100), "stock": 10}
    response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body | change)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "change",
    [{"price_cents": -1}, {"price_cents": 1.5}, {"currency": "usd"}, {"name": ""}, {"name": "n" * 201}],
)
def test_invalid_products_are_400(api, shop, change) -> None:
    owner, creator_id, _ = shop
    body = {"name": "Cap", "price_cents": 100, "currency": "EUR"}
    assert api.post(f"/creators/{creator_id}/products", owner.token, json=body | change).status_code == 400


def test_unknown_product_and_drop_are_404(api, shop) -> None:
    owner, creator_id, _ = shop
    assert api.get("/products/pr_nope").json()["error"]["code"] == "product_not_found"
    assert api.get("/drops/dr_nope").json()["error"]["code"] == "drop_not_found"
    body = {"product_id": "pr_nope", "start_time": iso(10), "end_time": iso(20), "stock": 1}
    assert api.post(f"/creators/{creator_id}/drops", owner.token, json=body).status_code == 404


def _stored(drop_id: str) -> Drop:
    return Drop.get(drop_id, consistent_read=True)


def _wait_for_status(drop_id: str, status: str, timeout: float) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _stored(drop_id).status == status:
            return time.time()
        time.sleep(0.05)
    raise AssertionError(f"{drop_id} never became {status}")


def test_drop_lifecycle_runs_on_time_from_the_scheduler(api, shop, messaging_endpoint) -> None:
    drop = make_drop(api, shop, 2, 4)
    scheduler = boto3.client(
        "scheduler",
        endpoint_url=messaging_endpoint,
        region_name=REGION,
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    group = get_settings().scheduler_group
    names = {s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]}
    assert {f"{drop['drop_id']}-start", f"{drop['drop_id']}-end"} <= names
    start = datetime.fromisoformat(drop["start_time"].replace("Z", "+00:00")).timestamp()
    end = datetime.fromisoformat(drop["end_time"].replace("Z", "+00:00")).timestamp()
    went_live = _wait_for_status(drop["drop_id"], "live", 5)
    assert start - 0.05 <= went_live <= start + 1.0
    ended = _wait_for_status(drop["drop_id"], "ended", 5)
    assert end - 0.05 <= ended <= end + 1.0
    before = _stored(drop["drop_id"]).attribute_values
    for action in ("start", "end"):
        again = scheduling.run_lifecycle({"drop_id": drop["drop_id"], "action": action, "at": 0})
        assert again == "unchanged"
    assert _stored(drop["drop_id"]).attribute_values == before
    assert api.get(f"/products/{drop['product_id']}").json()["status"] == "ended"


def forget_drops(stack) -> None:
    """Empty the drop cache of the api function's code (not this process's) and of this process."""
    for catalog_module in stack.modules("chalicelib.domain.catalog"):
        catalog_module.drop_cache.clear()


def test_status_follows_the_clock_before_the_scheduler(api, shop, stack) -> None:
    drop = make_drop(api, shop, -5, 3600)
    assert drop["status"] == "live"
    # As if the scheduler had not run yet: the stored status lags, the read does not.
    Drop(drop_id=drop["drop_id"]).update(actions=[Drop.status.set("scheduled")])
    forget_drops(stack)
    assert api.get(f"/drops/{drop['drop_id']}").json()["status"] == "live"
    Drop(drop_id=drop["drop_id"]).update(actions=[Drop.stock.set(0)])
    forget_drops(stack)
    assert api.get(f"/drops/{drop['drop_id']}").json()["status"] == "sold_out"


def test_list_live_drops_soonest_first_paginated(api, shop) -> None:
    live = [make_drop(api, shop, -50 + i, 3600)["drop_id"] for i in range(5)]
    scheduled = [make_drop(api, shop, 600 + i, 3600)["drop_id"] for i in range(2)]
    scheduling.activate(live[0])  # one stored live, the others still stored scheduled
    seen: list[dict] = []
    page = None
    while True:
        body = api.get("/drops?status=live&limit=2" + (f"&page={page}" if page else "")).json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        page = body["next_page"]
        if not page:
            break
        # Drops move from the stored "scheduled" partition to "live" while a client pages through.
        for drop_id in live:
            scheduling.activate(drop_id)
    ids = [d["drop_id"] for d in seen]
    assert len(ids) == len(set(ids))
    assert set(live) <= set(ids)
    assert not set(scheduled) & set(ids)
    assert all(d["status"] == "live" for d in seen)
    starts = [d["start_time"] for d in seen]
    assert starts == sorted(starts)
    upcoming = api.get("/drops?status=scheduled&limit=100").json()["items"]
    assert set(scheduled) <= {d["drop_id"] for d in upcoming}
    assert api.get("/drops?status=bogus").status_code == 400
    assert api.get("/drops?status=live&page=bad!").status_code == 400


def test_products_filter_by_status(api, shop) -> None:
    _, _, product = shop
    drafts = api.get("/products?status=draft&limit=100").json()
    assert product["product_id"] in {p["product_id"] for p in drafts["items"]}
    make_drop(api, shop, 600, 3600)
    scheduled = api.get("/products?status=scheduled&limit=100").json()["items"]
    assert product["product_id"] in {p["product_id"] for p in scheduled}
    assert api.get("/products?status=nope").status_code == 400


def test_etag_round_trip_and_stock_change(api, shop, stack) -> None:
    drop = make_drop(api, shop, -5, 3600)
    first = api.get(f"/drops/{drop['drop_id']}")
    etag = first.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"]
    again = api.get(f"/drops/{drop['drop_id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    Drop(drop_id=drop["drop_id"]).update(actions=[Drop.stock.add(-1)])
    for catalog_module in stack.modules("chalicelib.domain.catalog"):
        catalog_module.drop_cache.invalidate(drop["drop_id"])
    changed = api.get(f"/drops/{drop['drop_id']}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json()["stock"] == 9
    product = api.get(f"/products/{drop['product_id']}")
    assert (
        api.get(f"/products/{drop['product_id']}", headers={"If-None-Match": product.headers["ETag"]}).status_code
        == 304
    )


def test_a_warm_drop_read_makes_no_dynamodb_call(api, shop, stack) -> None:
    # The api function's code caches drops (for a second) in its own module globals: a read of a new
    # drop is one GetItem, and reads of it in a row are mostly served from that cache.
    drop = make_drop(api, shop, -5, 3600)
    with DynamoCalls() as cold:
        assert api.get(f"/drops/{drop['drop_id']}").status_code == 200
    assert cold.calls in (["GetItem"], [])  # [] when the environment that created it answers
    reads = 2 * len(stack.pools["api"].environments) + 5
    with DynamoCalls() as warm:
        for _ in range(reads):
            assert api.get(f"/drops/{drop['drop_id']}").status_code == 200
    assert set(warm.calls) <= {"GetItem"} and len(warm.calls) < reads, warm.calls


def test_stored_status_follows_the_stock_through_the_published_events(api, shop, new_user) -> None:
    drop = make_drop(api, shop, -5, 3600, stock=2)
    buyer = new_user()
    order = {"drop_id": drop["drop_id"], "quantity": 2, "payment_token": "tok_threeDSecureRequired"}
    placed = api.post("/orders", buyer.token, json=order, headers={"Idempotency-Key": "all-of-it"})
    assert placed.status_code == 201, placed.text
    _wait_for_status(drop["drop_id"], "sold_out", 60)
    deadline = time.time() + 30  # the product follows right after the drop
    while time.time() < deadline:
        products = api.get("/products?status=sold_out&limit=100").json()["items"]
        if drop["product_id"] in {p["product_id"] for p in products}:
            return
        time.sleep(0.1)
    raise AssertionError("the product never showed sold_out")


def test_a_drop_changing_partition_between_pages_is_listed_once(api, shop) -> None:
    # Started long before any other test's drop, so these four lead the live listing.
    drops = [make_drop(api, shop, -3000 + i, 3600)["drop_id"] for i in range(4)]
    later = make_drop(api, shop, -100, 3600)["drop_id"]  # keeps the stored "live" partition in play
    _wait_for_status(later, "live", 5)
    for drop_id in drops:
        _wait_for_status(drop_id, "live", 5)  # the scheduler's start fired; nothing else will move them
        Drop(drop_id=drop_id).update(actions=[Drop.status.set("scheduled")])
    first = api.get("/drops?status=live&limit=2").json()
    assert [d["drop_id"] for d in first["items"]] == drops[:2]
    for drop_id in drops[:2]:
        scheduling.activate(drop_id)  # stored partition scheduled -> live, between the two pages
    second = api.get(f"/drops?status=live&limit=2&page={first['next_page']}").json()
    assert [d["drop_id"] for d in second["items"]] == drops[2:]
