"""Payments: the payments consumer (idempotent, partial batch failures, compensation exactly once) and the
signed webhook (the providers themselves: tests/unit/test_payment_gateways.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.core.config import get_settings
from chalicelib.core.statuses import OrderStatus
from chalicelib.delivery import payments
from chalicelib.domain import settlement
from chalicelib.schema.models import Drop, Order, ProcessedEvent, Purchase
from devstack.identity import REGION, queue_arn
from devstack.lambda_runtime import LambdaContext
from tests.api import test_orders
from tests.api.test_orders import order
from tests.support import wait_for

# The order tests' fixtures, shared.
shop = test_orders.shop
make_drop = test_orders.make_drop


@pytest.fixture()
def fake_gateway(stack):
    """A fresh fake provider, with the dev stack's payments pump paused so this test alone delivers events."""
    pump = next(p for p in stack.pumps if p.name.endswith("-payments"))
    pump.stop()
    fake = payments.FakePaymentGateway()
    with stack.override(payment_gateway=fake):  # here and in every function's environments
        yield fake
    pump.start()


def test_through_the_dev_stack_orders_get_paid_or_released(api, new_user, make_drop) -> None:
    drop = make_drop(stock=4)
    buyer = new_user()
    paid = order(api, buyer, drop["drop_id"], quantity=1).json()
    declined = order(api, buyer, drop["drop_id"], quantity=2, token="tok_chargeDeclined").json()
    # Orders stream -> domain_events -> SNS -> payments queue -> payments consumer -> fake provider.
    wait_for(lambda: api.get(f"/orders/{paid['order_id']}", buyer.token).json()["status"] == "confirmed")
    wait_for(lambda: api.get(f"/orders/{declined['order_id']}", buyer.token).json()["status"] == "payment_failed")
    assert stock_of(drop["drop_id"]) == 3


def placed_event(order_id: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "order_placed",
        "occurred_at": "2030-01-01T00:00:00.000Z",
        "data": {"order_id": order_id},
    }


def sqs_event(*envelopes: dict) -> dict:
    return {
        "Records": [
            {
                "messageId": envelope["event_id"],
                "receiptHandle": "rh",
                "body": json.dumps(envelope),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn("livedrop-test-payments"),
                "awsRegion": REGION,
            }
            for envelope in envelopes
        ]
    }


def status_of(order_id: str) -> str:
    return str(Order.get(order_id, consistent_read=True).status)


def stock_of(drop_id: str) -> int:
    return int(Drop.get(drop_id, consistent_read=True).stock)


def test_a_redelivered_order_placed_charges_once(app_module, api, new_user, make_drop, fake_gateway) -> None:
    drop = make_drop(stock=3)
    placed = order(api, new_user(), drop["drop_id"]).json()
    event = sqs_event(placed_event(placed["order_id"]))
    for _ in range(2):
        assert app_module.payments(event, LambdaContext("payments")) == {"batchItemFailures": []}
    assert fake_gateway.charged == [placed["order_id"]]
    stored = Order.get(placed["order_id"], consistent_read=True)
    assert stored.status == "confirmed" and stored.payment_ref and stored.pending_bucket is None
    # A second event for the same order (another event id) still never charges twice.
    assert payments.process_order_placed(placed_event(placed["order_id"])) == "skipped"
    assert fake_gateway.charged == [placed["order_id"]]
    assert stock_of(drop["drop_id"]) == 2


def test_a_declined_payment_returns_the_stock_exactly_once(app_module, api, new_user, make_drop, fake_gateway) -> None:
    drop = make_drop(stock=5, per_user_limit=3)
    buyer = new_user()
    placed = order(api, buyer, drop["drop_id"], quantity=3, token="tok_chargeDeclined").json()
    assert stock_of(drop["drop_id"]) == 2
    envelope = placed_event(placed["order_id"])
    assert app_module.payments(sqs_event(envelope), LambdaContext("payments")) == {"batchItemFailures": []}
    assert status_of(placed["order_id"]) == "payment_failed"
    assert stock_of(drop["drop_id"]) == 5
    # Retried compensation: the marker lost, the event redelivered, and a direct retry on top.
    ProcessedEvent(event_key=f"payments#{envelope['event_id']}").delete()
    assert app_module.payments(sqs_event(envelope), LambdaContext("payments")) == {"batchItemFailures": []}
    assert not settlement.release_reservation(placed["order_id"], OrderStatus.PAYMENT_FAILED)
    assert stock_of(drop["drop_id"]) == 5
    assert int(Purchase.get(f"{drop['drop_id']}#{buyer.user_id}").quantity) == 0
    assert fake_gateway.charged == []
    # The buyer may buy again: the limit counts only what is held.
    assert order(api, buyer, drop["drop_id"], quantity=3).status_code == 201


def test_a_processing_error_fails_only_its_record(app_module, api, new_user, make_drop, fake_gateway) -> None:
    drop = make_drop(stock=5)
    buyer = new_user()
    flaky = order(api, buyer, drop["drop_id"], token="tok_processingError").json()
    fine = order(api, buyer, drop["drop_id"]).json()
    flaky_event, fine_event = placed_event(flaky["order_id"]), placed_event(fine["order_id"])
    result = app_module.payments(sqs_event(flaky_event, fine_event), LambdaContext("payments"))
    assert result == {"batchItemFailures": [{"itemIdentifier": flaky_event["event_id"]}]}
    assert status_of(fine["order_id"]) == "confirmed"
    assert status_of(flaky["order_id"]) == "pending_payment"
    second = app_module.payments(sqs_event(flaky_event), LambdaContext("payments"))
    assert second["batchItemFailures"] == [{"itemIdentifier": flaky_event["event_id"]}]
    assert app_module.payments(sqs_event(flaky_event), LambdaContext("payments")) == {"batchItemFailures": []}
    assert status_of(flaky["order_id"]) == "confirmed"
    assert sorted(fake_gateway.charged) == sorted([flaky["order_id"], fine["order_id"]])


def test_a_transient_failure_is_retried_and_a_copy_after_success_charges_nothing(
    app_module, api, new_user, make_drop, fake_gateway
):
    drop = make_drop(stock=2)
    buyer = new_user()
    flaky = order(api, buyer, drop["drop_id"], token="tok_processingError").json()
    envelope = placed_event(flaky["order_id"])
    for _ in range(2):  # the fake provider fails twice: the redelivery charges again
        result = app_module.payments(sqs_event(envelope), LambdaContext("payments"))
        assert result == {"batchItemFailures": [{"itemIdentifier": envelope["event_id"]}]}
        shown = api.get(f"/orders/{flaky['order_id']}", buyer.token).json()
        assert shown["status"] == "pending_payment" and shown["payment_retrying"] is True
    for _ in range(2):  # succeeds, then a late copy finds the order settled: no second charge
        assert app_module.payments(sqs_event(envelope), LambdaContext("payments")) == {"batchItemFailures": []}
    assert status_of(flaky["order_id"]) == "confirmed" and fake_gateway.charged == [flaky["order_id"]]
    assert "payment_retrying" not in api.get(f"/orders/{flaky['order_id']}", buyer.token).json()
    # The order's status is the consumer's only marker: nothing written per event besides the order.
    assert ProcessedEvent.count(f"payments#{envelope['event_id']}", consistent_read=True) == 0


def test_a_charge_after_expiry_is_refunded_and_the_order_stays_expired(api, new_user, make_drop, fake_gateway) -> None:
    drop = make_drop(stock=2)
    placed = order(api, new_user(), drop["drop_id"]).json()
    expired_at = int(Order.get(placed["order_id"]).expires_at) + 1
    assert settlement.release_reservation(placed["order_id"], OrderStatus.EXPIRED, expired_at)
    result = fake_gateway.charge(placed["order_id"], 1999, "USD", "tok_visa", placed["order_id"])
    assert payments.settle(placed["order_id"], result, fake_gateway) == "refunded"
    assert status_of(placed["order_id"]) == "expired" and fake_gateway.refunded == [result.payment_ref]
    assert stock_of(drop["drop_id"]) == 2


# --- Stripe -----------------------------------------------------------------------------------------
def stripe_signature(payload: bytes, secret: str, at: int) -> str:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@pytest.fixture()
def webhook_secret(stack) -> Iterator[str]:
    secret = "whsec_" + uuid.uuid4().hex
    with stack.override(settings=dataclasses.replace(get_settings(), stripe_webhook_secret=secret)):
        yield secret


def intent_event(kind: str, order_id: str) -> bytes:
    body = {"id": "evt_1", "type": kind, "data": {"object": {"id": "pi_9", "metadata": {"order_id": order_id}}}}
    return json.dumps(body).encode()


def test_the_webhook_checks_the_signature_and_settles(api, new_user, make_drop, fake_gateway, webhook_secret) -> None:
    drop = make_drop(stock=3)
    buyer = new_user()
    paid = order(api, buyer, drop["drop_id"]).json()
    failed = order(api, buyer, drop["drop_id"]).json()
    now = int(time.time())

    def post(payload: bytes, signature: str | None):
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        return api.post("/payments/webhook", data=payload, headers=headers)

    payload = intent_event("payment_intent.succeeded", paid["order_id"])
    for bad in (
        None,
        "garbage",
        stripe_signature(payload, "whsec_wrong", now),
        stripe_signature(payload, webhook_secret, now - 301),
        stripe_signature(payload + b" ", webhook_secret, now),
    ):
        rejected = post(payload, bad)
        assert rejected.status_code == 400 and rejected.json()["error"]["code"] == "invalid_signature"
    assert status_of(paid["order_id"]) == "pending_payment"

    for _ in range(2):
        accepted = post(payload, stripe_signature(payload, webhook_secret, now))
        assert accepted.status_code == 200 and accepted.json() == {"received": True}
    assert status_of(paid["order_id"]) == "confirmed"
    assert Order.get(paid["order_id"]).payment_ref == "pi_9"

    failure = intent_event("payment_intent.payment_failed", failed["order_id"])
    for _ in range(2):
        assert post(failure, stripe_signature(failure, webhook_secret, now)).status_code == 200
    assert status_of(failed["order_id"]) == "payment_failed"
    assert stock_of(drop["drop_id"]) == 2
    other = json.dumps({"type": "charge.refunded", "data": {"object": {}}}).encode()
    assert post(other, stripe_signature(other, webhook_secret, now)).status_code == 200


def test_malformed_signatures_and_bodies_are_400_not_500(api, webhook_secret) -> None:
    """issue 24 #3: the attacker's three reproductions, through the gateway, with a secret set as in prod."""
    now = int(time.time())

    def post(payload: bytes, signature: str):
        return api.post(
            "/payments/webhook",
            data=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
        )

    superscript = post(b"{}", "t=\u00b2,v1=" + "0" * 64)
    assert superscript.status_code == 400 and superscript.json()["error"]["code"] == "invalid_signature"
    for body in (
        {"type": "payment_intent.succeeded", "data": []},
        {"type": "payment_intent.succeeded", "data": {"object": "pi_1"}},
    ):
        payload = json.dumps(body).encode()
        refused = post(payload, stripe_signature(payload, webhook_secret, now))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"
