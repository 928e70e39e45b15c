"""Payments: a provider interface (a deterministic fake for the dev stack, Stripe's PaymentIntents over
HTTPS in AWS), the `payments` queue consumer that charges placed orders, and Stripe's webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import bootstrap, orders, secrets
from chalicelib.config import get_settings
from chalicelib.errors import InvalidRequestError, InvalidSignatureError, PaymentProviderError
from chalicelib.idempotency import BatchMarkers
from chalicelib.messages import PAYMENT_EVENTS, Envelope, PoisonMessageError
from chalicelib.models import Order
from chalicelib.observability import count, logger

SUCCEEDED = "succeeded"
DECLINED = "declined"
# The provider has not decided yet (e.g. 3-D Secure): the webhook or the expiry sweeper settles it.
PENDING = "pending"
WEBHOOK_TOLERANCE_S = 300


@dataclass(frozen=True)
class ChargeResult:
    status: str
    payment_ref: str | None = None
    decline_code: str | None = None


class PaymentGateway(Protocol):
    def charge(
        self, order_id: str, amount_cents: int, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult: ...

    def refund(self, payment_ref: str, amount_cents: int, idempotency_key: str) -> None: ...


class FakePaymentGateway:
    """The dev stack's provider: tok_visa succeeds, tok_chargeDeclined is declined, tok_processingError
    fails twice per order and then succeeds, tok_threeDSecureRequired stays pending (the buyer would
    have to act; the webhook or the expiry settles it); a repeated idempotency key returns the first
    result. Each call takes `latency_ms` (Stripe's confirm takes a few hundred), calls overlapping freely."""

    def __init__(self, latency_ms: int = 0) -> None:
        self.latency_ms = latency_ms
        self._lock = threading.Lock()
        self._results: dict[str, ChargeResult] = {}
        self._failures: Counter[str] = Counter()
        self.charged: list[str] = []
        self.refunded: list[str] = []
        self._refunds: set[str] = set()

    def charge(self, order_id: str, amount_cents: int, currency: str, token: str, idempotency_key: str) -> ChargeResult:
        """Charge once per idempotency key (deterministic per order id)."""
        self._wait()
        with self._lock:
            found = self._results.get(idempotency_key)
            if found is not None:
                return found
            if token == "tok_processingError":
                self._failures[order_id] += 1
                if self._failures[order_id] <= 2:
                    raise PaymentProviderError("the fake provider had a processing error")
            if token in ("tok_visa", "tok_processingError"):
                ref = "fake_ch_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
                result = ChargeResult(SUCCEEDED, ref)
                self.charged.append(order_id)
            elif token == "tok_threeDSecureRequired":
                result = ChargeResult(PENDING, "fake_pi_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24])
            elif token == "tok_chargeDeclined":
                result = ChargeResult(DECLINED, None, "card_declined")
            else:
                result = ChargeResult(DECLINED, None, "invalid_payment_method")
            self._results[idempotency_key] = result
            return result

    def refund(self, payment_ref: str, amount_cents: int, idempotency_key: str) -> None:
        """Refund a charge once per idempotency key."""
        self._wait()
        with self._lock:
            if idempotency_key not in self._refunds:
                self._refunds.add(idempotency_key)
                self.refunded.append(payment_ref)

    def _wait(self) -> None:
        # The provider's round trip, outside the lock: charges of one batch or of many overlap as with Stripe.
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)


class StripePaymentGateway:
    """Stripe PaymentIntents over HTTPS (stdlib urllib), confirmed at creation with the token as payment method."""

    api_base = "https://api.stripe.com/v1"

    def __init__(self, api_key: str, timeout_s: float = 15.0) -> None:
        self._api_key = api_key
        self._timeout = timeout_s

    def charge(self, order_id: str, amount_cents: int, currency: str, token: str, idempotency_key: str) -> ChargeResult:
        """Create and confirm a PaymentIntent; Stripe's Idempotency-Key makes a retry return the first intent."""
        form = {
            "amount": str(amount_cents),
            "currency": currency.lower(),
            "payment_method": token,
            "confirm": "true",
            # Server-side confirmation cannot follow a redirect; such methods are declined instead.
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
            "metadata[order_id]": order_id,
        }
        status, body = self._post("/payment_intents", form, idempotency_key)
        if status == 200:
            return _intent_result(body)
        error = body.get("error") or {}
        if status == 402 or error.get("type") == "card_error":
            intent = error.get("payment_intent") or {}
            return ChargeResult(DECLINED, intent.get("id"), error.get("decline_code") or error.get("code"))
        if status == 400 and error.get("type") == "invalid_request_error" and error.get("param") == "payment_method":
            return ChargeResult(DECLINED, None, error.get("code") or "invalid_payment_method")
        raise PaymentProviderError(f"stripe answered {status}: {error.get('code') or error.get('type')}")

    def refund(self, payment_ref: str, amount_cents: int, idempotency_key: str) -> None:
        """Refund a PaymentIntent in full (once per idempotency key)."""
        status, body = self._post("/refunds", {"payment_intent": payment_ref}, idempotency_key)
        if status != 200:
            raise PaymentProviderError(f"stripe refund answered {status}")

    def _post(self, path: str, form: dict[str, str], idempotency_key: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 - a fixed https URL, never user input
            self.api_base + path,
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Idempotency-Key": idempotency_key,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - see above
                return int(response.status), json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read() or b"{}")
            except ValueError:
                body = {}
            return int(error.code), body
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise PaymentProviderError(f"stripe unreachable: {error}") from None


def _intent_result(intent: dict[str, Any]) -> ChargeResult:
    status = intent.get("status")
    if status == "succeeded":
        return ChargeResult(SUCCEEDED, intent.get("id"))
    if status in ("requires_payment_method", "canceled"):
        error = intent.get("last_payment_error") or {}
        return ChargeResult(DECLINED, intent.get("id"), error.get("decline_code") or error.get("code"))
    return ChargeResult(PENDING, intent.get("id"))


def payment_gateway() -> PaymentGateway:
    """The process-wide provider chosen by settings.payment_provider ("fake" or "stripe"), from the
    composition root (tests hand in their own through bootstrap.override)."""
    return bootstrap.payment_gateway()


# --- settling an order ----------------------------------------------------------------------------
def settle(order_id: str, result: ChargeResult, gateway: PaymentGateway) -> str:
    """Apply a provider's verdict to an order, idempotently; returns what became of the order."""
    if result.status == DECLINED:
        orders.release_reservation(order_id, orders.PAYMENT_FAILED)
        count("PaymentDeclined")
        return orders.PAYMENT_FAILED
    if result.status != SUCCEEDED or result.payment_ref is None:
        return PENDING
    if orders.confirm_payment(order_id, result.payment_ref):
        return orders.CONFIRMED
    order = orders.load_order(order_id)
    if order is None or order.status == orders.CONFIRMED:
        return orders.CONFIRMED if order is not None else "missing"
    # Charged, but the reservation ran out first: the stock went (or goes) back, so the money does too.
    if order.status == orders.PENDING:
        orders.release_reservation(order_id, orders.EXPIRED)
    gateway.refund(result.payment_ref, int(order.amount_cents), f"refund-{order_id}")
    logger.warning("refunded a charge that arrived after the reservation ended", extra={"order_id": order_id})
    count("PaymentRefundedLate")
    return "refunded"


def process_order_placed(
    envelope: Envelope | dict[str, Any], gateway: PaymentGateway | None = None, loaded: dict[str, Any] | None = None
) -> str:
    """Charge the order of an order_placed event and settle it; idempotent on the order.

    The order's own status is what makes this safe: only a pending order is charged, the order id
    is the provider's idempotency key (a redelivery racing the first delivery gets the same charge
    back) and every settlement is a status-guarded update, so a redelivered event, or another event of
    the same order, never charges or settles twice. (The consumer's event markers only spare a
    redelivery the reads.) `loaded` holds orders already read for the batch (by id).
    """
    gateway = gateway or payment_gateway()
    order_id = Envelope.parse(envelope).field("order_id")
    order = loaded[order_id] if loaded is not None and order_id in loaded else orders.load_order(order_id)
    if order is None:
        return "missing"
    if orders.derived_status(order) != orders.PENDING:
        # Already settled, or overdue: the sweeper owns an overdue reservation.
        return "skipped"
    result = gateway.charge(
        order.order_id, int(order.amount_cents), order.currency, order.payment_token or "", order.order_id
    )
    return settle(order.order_id, result, gateway)


# The event types the payments queue's consumer handles: its filter policy (topology) is the same set.
HANDLED_EVENT_TYPES = PAYMENT_EVENTS


def _placed_envelope(record: dict[str, Any]) -> Envelope | None:
    try:
        envelope = Envelope.parse(record.get("body") or "")
        if envelope.event_type in HANDLED_EVENT_TYPES:
            envelope.field("order_id")
            return envelope
    except PoisonMessageError:
        pass
    return None


def _marker_key(envelope: Envelope) -> str:
    return f"payments#{envelope.event_id}"


def _load_batch(envelopes: list[Envelope]) -> dict[str, Any]:
    """The batch's orders in one BatchGetItem (strongly consistent) rather than one read each."""
    ids = {envelope.field("order_id") for envelope in envelopes}
    if len(ids) < 2:
        return {}
    try:
        found = {order.order_id: order for order in Order.batch_get(list(ids), consistent_read=True)}
    except Exception:
        logger.exception("could not read the batch's orders at once; reading them one by one")
        return {}
    # An order the batch read did not find is missing for good (orders are never deleted).
    return {order_id: found.get(order_id) for order_id in ids}


def handle_payment_messages(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The `payments` SQS consumer: one record per order_placed envelope, partial batch failures reported.

    An event handled before (its marker found) is skipped; markers are read and written once per batch."""
    placed = list(filter(None, map(_placed_envelope, event.get("Records") or [])))
    markers = BatchMarkers(_marker_key(envelope) for envelope in placed)
    loaded = _load_batch([e for e in placed if markers.done is None or _marker_key(e) not in markers.done])

    def payment_record(record: SQSRecord) -> None:
        envelope = Envelope.parse(record.body)
        if envelope.event_type in HANDLED_EVENT_TYPES:
            markers.once(_marker_key(envelope), lambda: process_order_placed(envelope, loaded=loaded))

    # Failures are reported per record even when all fail: the same retry, without an error in the logs.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        return dict(
            process_partial_response(event=event, record_handler=payment_record, processor=processor, context=context)
        )
    finally:
        markers.finish()


# --- Stripe webhook -------------------------------------------------------------------------------
def verify_stripe_signature(
    payload: bytes, header: str | None, secret: str, at_s: float | None = None, tolerance_s: int = WEBHOOK_TOLERANCE_S
) -> None:
    """Check a Stripe-Signature header (`t=…,v1=…`): HMAC-SHA256 of `t.payload`, at most `tolerance_s` old."""
    if not secret:
        raise InvalidSignatureError("the webhook secret is not configured")
    pairs = [part.split("=", 1) for part in (header or "").split(",") if "=" in part]
    stamps = [value for name, value in pairs if name.strip() == "t"]
    signatures = [value.strip() for name, value in pairs if name.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        raise InvalidSignatureError("Stripe-Signature is missing or malformed")
    stamp = int(stamps[0])
    now = time.time() if at_s is None else at_s
    if abs(now - stamp) > tolerance_s:
        raise InvalidSignatureError("Stripe-Signature is too old")
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise InvalidSignatureError("Stripe-Signature does not match")


def handle_webhook(payload: bytes, signature_header: str | None) -> dict[str, Any]:
    """POST /payments/webhook: apply payment_intent.succeeded / payment_failed to the order, idempotently."""
    verify_stripe_signature(payload, signature_header, secrets.stripe_value(get_settings(), "webhook_secret"))
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("webhook body is not valid JSON") from None
    intent = (event.get("data") or {}).get("object") or {} if isinstance(event, dict) else {}
    order_id = (intent.get("metadata") or {}).get("order_id")
    kind = event.get("type") if isinstance(event, dict) else None
    if order_id and kind == "payment_intent.succeeded":
        settle(str(order_id), ChargeResult(SUCCEEDED, intent.get("id")), payment_gateway())
    elif order_id and kind == "payment_intent.payment_failed":
        settle(str(order_id), ChargeResult(DECLINED, intent.get("id")), payment_gateway())
    return {"received": True}
