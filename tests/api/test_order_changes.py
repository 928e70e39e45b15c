"""Shipping addresses on orders and a buyer cancelling an unpaid order (docs/api.md "Orders")."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.countries import COUNTRY_CODES
from chalicelib.delivery import payments
from chalicelib.domain import orders
from chalicelib.schema import stock as shards
from chalicelib.schema.models import Order, Purchase
from devstack.lambda_runtime import LambdaContext
from tests.api import test_orders, test_payments
from tests.api.test_orders import error_code, order
from tests.api.test_payments import placed_event, sqs_event, status_of, stock_of
from tests.support import iso, open_shop, wait_for

shop = test_orders.shop
make_drop = test_orders.make_drop
fake_gateway = test_payments.fake_gateway

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def order_with(api, user, drop_id: str, address, key: str | None = None):
    body = {"drop_id": drop_id, "quantity": 1, "payment_token": "tok_visa", "shipping_address": address}
    return api.post("/orders", user.token, json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})


def cancel(api, user, order_id: str):
    return api.post(f"/orders/{order_id}/cancel", user.token)


# --- shipping addresses -----------------------------------------------------------------------
def test_an_order_keeps_its_shipping_address_and_shows_it_to_the_buyer(api, new_user, make_drop) -> None:
    drop, buyer = make_drop(stock=5), new_user()
    address = ADDRESS | {"line2": "Flat 3", "region": "Greater London"}
    placed = order_with(api, buyer, drop["drop_id"], address, key="ship-1")
    assert placed.status_code == 201, placed.text
    assert placed.json()["shipping_address"] == address
    assert api.get(f"/orders/{placed.json()['order_id']}", buyer.token).json()["shipping_address"] == address
    # The same key with another address is another request, not a replay.
    again = order_with(api, buyer, drop["drop_id"], ADDRESS | {"city": "Paris", "country": "FR"}, key="ship-1")
    assert again.status_code == 422
    assert order_with(api, buyer, drop["drop_id"], address, key="ship-1").headers.get("Idempotent-Replayed") == "true"
    # An order without one shows none.
    assert "shipping_address" not in order(api, buyer, drop["drop_id"]).json()


_FIELDS = {"name": 100, "line1": 200, "line2": 200, "city": 100, "region": 100, "postal_code": 20}
_REQUIRED = ("name", "line1", "city", "postal_code", "country")


def _valid(address: dict) -> bool:
    if set(address) - {*_FIELDS, "country"} or any(f not in address for f in _REQUIRED):
        return False
    for name, value in address.items():
        if name == "country":
            if value not in COUNTRY_CODES:
                return False
        elif not isinstance(value, str) or len(value) > _FIELDS[name] or (name in _REQUIRED and not value):
            return False
    return True


_text = st.one_of(st.text(alphabet="ab 1-", max_size=3), st.integers(0, 3).map(lambda n: "x" * (n + 19)))
_address = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(_text, st.just("n" * 101), st.integers()),
        "line1": st.one_of(_text, st.just("l" * 201)),
        "line2": st.one_of(_text, st.just("l" * 201)),
        "city": _text,
        "region": st.one_of(_text, st.just("r" * 101)),
        "postal_code": st.one_of(_text, st.just("9" * 21)),
        "country": st.one_of(st.sampled_from(["US", "DE", "JP", "us", "XX", "UK", "GBR", "", "D"]), st.integers()),
        "floor": st.just("2"),
    },
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=_address)
def test_a_shipping_address_is_stored_whole_or_refused_with_400(api, new_user_factory, address) -> None:
    drop = _property_drop(api, new_user_factory)
    buyer = new_user_factory()
    placed = order_with(api, buyer, drop, address)
    if _valid(address):
        assert placed.status_code == 201, (address, placed.text)
        assert placed.json()["shipping_address"] == address
    else:
        assert placed.status_code == 400, (address, placed.text)
        assert error_code(placed) == "invalid_request"
        assert "shipping_address" in placed.json()["error"]["message"]


_drops: dict[str, str] = {}


def _property_drop(api, new_user_factory) -> str:
    """One roomy drop for every example (a drop per example would make most of the test's time)."""
    if "drop" not in _drops:
        owner = new_user_factory(name="Shipper", creator=True)
        creator_id, product = open_shop(api, owner, "Poster", 500)
        body = {"product_id": product["product_id"], "start_time": iso(-1), "end_time": iso(3600)}
        made = api.post(f"/creators/{creator_id}/drops", owner.token, json=body | {"stock": 10_000})
        assert made.status_code == 201, made.text
        _drops["drop"] = made.json()["drop_id"]
    return _drops["drop"]


# --- cancelling an order ------------------------------------------------------------------------
def test_a_buyer_cancels_an_unpaid_order_and_its_units_are_back_at_once(
    app_module, api, new_user, shop, make_drop, fake_gateway
) -> None:
    drop, buyer = make_drop(stock=5, per_user_limit=2), new_user()
    placed = order(api, buyer, drop["drop_id"], quantity=2).json()
    assert stock_of(drop["drop_id"]) == 3
    first = cancel(api, buyer, placed["order_id"])
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "cancelled" and first.json()["order_id"] == placed["order_id"]
    assert stock_of(drop["drop_id"]) == 5
    assert int(Purchase.get(f"{drop['drop_id']}#{buyer.user_id}").quantity) == 0
    # A retried cancel answers the same and gives nothing back twice.
    assert cancel(api, buyer, placed["order_id"]).json()["status"] == "cancelled"
    assert stock_of(drop["drop_id"]) == 5
    # The payments consumer, reached late, never charges a cancelled order.
    assert app_module.payments(sqs_event(placed_event(placed["order_id"])), LambdaContext("payments")) == {
        "batchItemFailures": []
    }
    assert fake_gateway.charged == [] and status_of(placed["order_id"]) == "cancelled"
    sales = api.get(f"/drops/{drop['drop_id']}/sales", shop[0].token).json()
    assert sales["orders"]["cancelled"] == 1 and sales["orders"]["pending_payment"] == 0


def test_other_users_get_404_and_a_paid_order_cannot_be_cancelled(app_module, api, new_user, make_drop) -> None:
    drop, buyer, other = make_drop(stock=5), new_user(), new_user()
    placed = order(api, buyer, drop["drop_id"]).json()
    refused = cancel(api, other, placed["order_id"])
    assert refused.status_code == 404 and error_code(refused) == "order_not_found"
    assert cancel(api, buyer, "or_nope").status_code == 404
    wait_for(lambda: status_of(placed["order_id"]) == "confirmed")
    late = cancel(api, buyer, placed["order_id"])
    assert late.status_code == 409 and error_code(late) == "order_not_cancellable"
    assert status_of(placed["order_id"]) == "confirmed" and stock_of(drop["drop_id"]) == 4
    assert cancel(api, buyer, placed["order_id"]).status_code == 409
    garbage = api.post(f"/orders/{placed['order_id']}/cancel", buyer.token, data="[1]")
    assert garbage.status_code == 400


def test_a_charge_already_on_its_way_when_the_cancel_wins_is_refunded(api, new_user, make_drop, fake_gateway) -> None:
    drop, buyer = make_drop(stock=3), new_user()
    placed = order(api, buyer, drop["drop_id"]).json()
    loaded = orders.load_order(placed["order_id"])
    charged = fake_gateway.charge(placed["order_id"], 1999, "USD", "tok_visa", placed["order_id"])
    assert cancel(api, buyer, placed["order_id"]).status_code == 200
    assert payments.settle(placed["order_id"], charged, fake_gateway, loaded) == "refunded"
    assert fake_gateway.refunded == [charged.payment_ref]
    assert status_of(placed["order_id"]) == "cancelled" and stock_of(drop["drop_id"]) == 3


def test_cancelling_a_sharded_order_returns_its_units_to_their_shard(api, new_user, make_drop, fake_gateway) -> None:
    drop, buyer = make_drop(stock=40, stock_shards=4), new_user()
    placed = order(api, buyer, drop["drop_id"], quantity=3).json()
    assert shards.total(drop["drop_id"], 4, fresh=True) == 37
    assert cancel(api, buyer, placed["order_id"]).json()["status"] == "cancelled"
    assert shards.total(drop["drop_id"], 4, fresh=True) == 40
    assert Order.get(placed["order_id"], consistent_read=True).status == "cancelled"
