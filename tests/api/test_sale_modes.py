"""Sale modes on the drop resource, per-user rate limits and sharded stock (docs/sale-modes.md)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.errors import LiveDropError
from chalicelib.core.statuses import RELEASED, OrderStatus
from chalicelib.domain import settlement
from chalicelib.schema import db, stock
from chalicelib.schema.models import Drop, Order, StockShard
from tests.support import iso, open_shop, place_order


@pytest.fixture()
def shop(api, new_user):
    owner = new_user(name="Maker", creator=True)
    creator_id, product = open_shop(api, owner, "Hot sneaker", 1500)
    return owner, creator_id, product


def create_drop(api, shop, stock: int = 10, start: float = -1, end: float = 3600, **extra):
    owner, creator_id, product = shop
    body = {"product_id": product["product_id"], "start_time": iso(start), "end_time": iso(end), "stock": stock}
    return api.post(f"/creators/{creator_id}/drops", owner.token, json=body | extra)


def order(api, user, drop_id: str, quantity: int = 1):
    body = {"drop_id": drop_id, "quantity": quantity, "payment_token": "tok_threeDSecureRequired"}
    return api.post("/orders", user.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def test_a_drop_shows_its_sale_mode_and_settings_in_reads_and_listings(api, shop) -> None:
    first_come = create_drop(api, shop).json()
    assert first_come["sale_mode"] == "first_come" and first_come["stock_shards"] == 1
    assert first_come["queue"] is None and first_come["draw"] is None

    queued = create_drop(
        api, shop, start=600, sale_mode="queue", admissions_per_second=7, queue_opens_before_seconds=1200
    )
    assert queued.status_code == 201, queued.text
    queue = queued.json()
    assert queue["sale_mode"] == "queue"
    assert queue["queue"]["admissions_per_second"] == 7
    assert queue["queue"]["purchase_window_seconds"] == 300
    assert queue["queue"]["opens_at"] < queue["start_time"]

    drawn = create_drop(api, shop, stock=5, start=600, sale_mode="draw", purchase_window_seconds=120).json()
    assert drawn["sale_mode"] == "draw" and drawn["per_user_limit"] == 1
    assert len(drawn["draw"]["commitment"]) == 64 and drawn["draw"]["seed"] is None
    assert drawn["draw"]["draw_at"] == drawn["start_time"] and drawn["draw"]["purchase_window_seconds"] == 120

    assert api.get(f"/drops/{queue['drop_id']}").json() == queue
    listed = {d["drop_id"]: d for d in api.get("/drops?status=scheduled&limit=100").json()["items"]}
    assert listed[drawn["drop_id"]]["draw"]["commitment"] == drawn["draw"]["commitment"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sale_mode": "auction"}, "sale_mode"),
        ({"sale_mode": 3}, "sale_mode"),
        # One example of the sale-mode rules of the domain (all of them: tests/unit/domain/test_drops.py).
        ({"sale_mode": "draw", "admissions_per_second": 5}, "does not apply"),
        ({"stock_shards": 0}, "stock_shards"),
        ({"stock_shards": 33}, "stock_shards"),
        ({"queue": {"admissions_per_second": 1}}, "unknown field"),
    ],
)
def test_bad_sale_mode_settings_are_400(api, shop, extra, message) -> None:
    response = create_drop(api, shop, start=600, **extra)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]


def test_a_client_over_its_order_limit_gets_429_and_others_are_unaffected(api, new_user, shop) -> None:
    drop = create_drop(api, shop, stock=100).json()
    greedy, other = new_user(), new_user()
    limit = get_settings().order_rate_limit
    # A fixed window may turn over mid-run: two windows' worth of orders always meets the limit.
    responses = []
    for _ in range(2 * limit + 1):
        responses.append(order(api, greedy, drop["drop_id"]))
        if responses[-1].status_code == 429:
            break
    refused = responses[-1]
    assert refused.status_code == 429, [r.status_code for r in responses]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= get_settings().rate_window_seconds
    assert {r.status_code for r in responses[:-1]} == {201}
    assert order(api, other, drop["drop_id"]).status_code == 201
    # The refused order wrote nothing: the stock holds exactly the accepted ones.
    assert int(Drop.get(drop["drop_id"], consistent_read=True).stock) == 100 - len(responses)


# --- sharded stock ------------------------------------------------------------------------------
@pytest.fixture()
def sold_out_queue():
    """A queue of our own receiving the events topic's sold_out events."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName=f"test-sold-out-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=get_settings().events_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"event_type": ["sold_out"]})},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    yield url
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)


def sold_out_events(url: str, drop_id: str, deadline: float) -> list[dict]:
    """sold_out events of the drop: polled until one arrived, then a few more polls for any repeat."""
    sqs = aws.client("sqs")
    found: list[dict] = []
    quiet_polls = 0
    while time.monotonic() < deadline and quiet_polls < 3:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        events = [json.loads(m["Body"]) for m in batch]
        found += [e for e in events if e["data"].get("drop_id") == drop_id]
        quiet_polls = quiet_polls + 1 if found and not batch else 0
    return found


def shard_levels(drop_id: str) -> dict[int, int]:
    shards = StockShard.scan(StockShard.drop_id == drop_id, consistent_read=True)
    return {int(s.shard): int(s.stock) for s in shards}


def held_units(drop_id: str) -> int:
    placed = Order.scan(Order.drop_id == drop_id, consistent_read=True)
    return sum(int(o.quantity) for o in placed if o.status not in RELEASED)


def test_twice_the_stock_in_concurrent_orders_on_eight_shards_sells_just_the_stock(api, shop, sold_out_queue) -> None:
    created = create_drop(api, shop, stock=300, stock_shards=8)
    assert created.status_code == 201, created.text
    drop = created.json()
    assert drop["stock_shards"] == 8 and drop["stock"] == 300
    drop_id = drop["drop_id"]
    assert sorted(shard_levels(drop_id).values()) == [37] * 4 + [38] * 4

    def attempt(index: int) -> str:
        try:
            result = place_order(f"u_{uuid.uuid4().hex}", f"k{index}", drop_id, 1, "tok_threeDSecureRequired")
        except LiveDropError as error:
            return error.code
        return str(result.status_code)

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(600)))
    assert outcomes.count("201") == 300
    assert set(outcomes) <= {"201", "sold_out", "insufficient_stock", "try_again"}
    assert outcomes.count("sold_out") >= 1
    assert shard_levels(drop_id) == dict.fromkeys(range(8), 0)
    placed = list(Order.scan(Order.drop_id == drop_id, consistent_read=True))
    assert len(placed) == 300
    assert len({int(o.stock_shard) for o in placed}) > 1  # orders landed on several shards
    assert sum(shard_levels(drop_id).values()) + held_units(drop_id) == 300

    announced = sold_out_events(sold_out_queue, drop_id, deadline=time.monotonic() + 60)
    assert len(announced) == 1, announced
    assert api.get(f"/drops/{drop_id}").json()["stock"] == 0
    deadline = time.monotonic() + 30
    while Drop.get(drop_id, consistent_read=True).status != "sold_out" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Drop.get(drop_id, consistent_read=True).status == "sold_out"


def test_a_released_reservation_goes_back_to_its_own_shard(api, shop) -> None:
    drop_id = create_drop(api, shop, stock=40, stock_shards=4).json()["drop_id"]
    token = "tok_threeDSecureRequired"
    results = [place_order(f"u_{uuid.uuid4().hex}", "k", drop_id, 3, token) for _ in range(5)]
    placed = [Order.get(r.body["order_id"], consistent_read=True) for r in results]
    before = shard_levels(drop_id)
    released = placed[0]
    assert settlement.release_reservation(released.order_id, OrderStatus.PAYMENT_FAILED)
    assert not settlement.release_reservation(released.order_id, OrderStatus.PAYMENT_FAILED)  # exactly once
    after = shard_levels(drop_id)
    shard = int(released.stock_shard)
    assert after[shard] == before[shard] + 3
    assert {k: v for k, v in after.items() if k != shard} == {k: v for k, v in before.items() if k != shard}
    assert sum(after.values()) + held_units(drop_id) == 40
    for level, initial in zip(after.values(), stock.split(40, 4), strict=True):
        assert 0 <= level <= initial


def test_an_order_larger_than_any_shard_is_insufficient_stock(api, shop) -> None:
    drop_id = create_drop(api, shop, stock=8, stock_shards=4).json()["drop_id"]
    with pytest.raises(LiveDropError) as refused:
        place_order(f"u_{uuid.uuid4().hex}", "k", drop_id, 3, "tok_threeDSecureRequired")
    assert refused.value.code == "insufficient_stock"
    assert sum(shard_levels(drop_id).values()) == 8


def test_a_busy_shard_is_passed_over_and_never_reported_as_sold_out(api, shop) -> None:
    drop_id = create_drop(api, shop, stock=20, stock_shards=4).json()["drop_id"]
    hot = stock.shard_id(drop_id, 0)

    def always_busy(params: dict, **_: object):
        items = json.loads(params.get("body") or b"{}").get("TransactItems") or []
        keys = [((item.get("Update") or {}).get("Key") or {}).get("shard_id", {}).get("S") for item in items]
        if hot not in keys:
            return None
        reasons = [{"Code": "TransactionConflict" if key == hot else "None"} for key in keys]
        error = {"Error": {"Code": "TransactionCanceledException", "Message": "busy"}, "CancellationReasons": reasons}
        return type("Http", (), {"status_code": 400, "headers": {}})(), error

    client = db.connection().client
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", always_busy, unique_id="busy-shard")
    try:
        outcomes = []
        for _ in range(17):
            try:
                result = place_order(f"u_{uuid.uuid4().hex}", "k", drop_id, 1, "tok_threeDSecureRequired")
                outcomes.append(str(result.status_code))
            except LiveDropError as error:
                outcomes.append(error.code)
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="busy-shard")
    assert outcomes[:15] == ["201"] * 15  # the other three shards serve every order
    assert outcomes[15:] == ["try_again", "try_again"]  # units left on a busy shard: not sold out
    assert shard_levels(drop_id) == {0: 5, 1: 0, 2: 0, 3: 0}
