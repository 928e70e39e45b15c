"""`python -m bench cost` and `plan` checked against the dev stack at small scale: what they assume per
order (one API invocation, one order transaction of 2 units per item, a sell-out of exactly the stock)
is what the dev stack does."""

from __future__ import annotations

import time
from typing import Any

import requests

from bench import cost, plan
from bench.calls import backend_calls
from bench.shop import account, live_drop
from bench.units import Meter
from chalicelib.core import aws
from chalicelib.schema.models import Order

ORDERS = 3


def test_a_small_sell_out_on_the_dev_stack_matches_the_models_per_order_quantities(stack: Any) -> None:
    session, base = requests.Session(), stack.rest_url
    owner = account(session, base, "Cost owner")
    _, _, drop = live_drop(session, base, owner, stock=ORDERS)
    buyers = [account(session, base, f"Cost buyer {i}") for i in range(ORDERS + 1)]
    api = stack.pools["api"]
    meter = Meter()
    before = api.stats()["invocations"]
    with backend_calls(meter) as (work, _):
        answers = [
            session.post(
                f"{base}/orders",
                headers=buyer | {"Idempotency-Key": f"cost-{i}"},
                json={"drop_id": drop, "quantity": 1, "payment_token": "tok_visa"},
            )
            for i, buyer in enumerate(buyers)
        ]
    # One API invocation per order placed (the model's one REST request), the refused one included.
    assert api.stats()["invocations"] - before == ORDERS + 1
    placed = [a.json()["order_id"] for a in answers if a.status_code == 201]
    # A first-come sell-out takes exactly its stock, as plan.orders_of says.
    assert len(placed) == plan.orders_of(plan.Drop(followers=0, entrants=0, stock=ORDERS, mode="first_come"))
    assert [a.json()["error"]["code"] for a in answers if a.status_code != 201] == ["sold_out"]
    deadline = time.monotonic() + 120
    while any(Order.get(o, consistent_read=True).status != "confirmed" for o in placed):
        assert time.monotonic() < deadline, "orders did not settle"
        time.sleep(0.2)
    dynamodb = aws.client("dynamodb")
    meter.settle(lambda operation, params: dynamodb._make_api_call(operation, params))
    # Each placed order is one transaction; its items cost 2 units each, so at least 2 per item written.
    assert work["dynamodb:TransactWriteItems"] >= ORDERS
    orders_table = next(t for t in meter.write if t.endswith("-Orders"))
    assert meter.write[orders_table] >= 2 * ORDERS
    figures = {
        "calls": {k: v / ORDERS for k, v in work.items()},
        "capacity": meter.summary(ORDERS),
        "functions": {"api": {"invocations_per_order": (ORDERS + 1) / ORDERS, "mean_ms": 10.0}},
    }
    total = cost.per_million(cost.lines(figures, 300, 10))
    assert total > figures["capacity"]["write_units_per_order"] * cost.PRICES["ddb_write"].usd
