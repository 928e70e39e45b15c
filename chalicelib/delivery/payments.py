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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.core import ports
from chalicelib.core.config import get_settings
from chalicelib.core.errors import InvalidRequestError, InvalidSignatureError, PaymentProviderError
from chalicelib.core.observability import count, logger
from chalicelib.core.statuses import OrderStatus
from chalicelib.core.threads import in_context
from chalicelib.domain import orders, settlement
from chalicelib.schema import secrets, topology
from chalicelib.schema.messages import PAYMENT_EVENTS, Envelope, PoisonMessageError
from chalicelib.schema.models import Order
from chalicelib.schema.retries import RetryingBatchProcessor

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

    def __init__(self, api_key: str | Callable[[], str], timeout_s: float = 15.0) -> None:
        # A callable is asked on every request: the key comes through the secrets cache, so a rotated
        # key reaches a warm function within the cache's age instead of never.
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
                "Authorization": f"Bearer {self._api_key() if callable(self._api_key) else self._api_key}",
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
    return ports.payment_gateway()


# --- settling an order ----------------------------------------------------------------------------
def settle(order_id: str, result: ChargeResult, gateway: PaymentGateway, order: Order | None = None) -> str:
    """Apply a provider's verdict to an order, idempotently; returns what became of the order.

    `order`, when the caller read it already (strongly consistent), spares the settlement a read."""
    if result.status == DECLINED:
        settlement.release_reservation(order_id, OrderStatus.PAYMENT_FAILED, order=order)
        count("PaymentDeclined")
        return OrderStatus.PAYMENT_FAILED
    if result.status != SUCCEEDED or result.payment_ref is None:
        return PENDING
    if settlement.confirm_payment(order_id, result.payment_ref, order=order):
        return OrderStatus.CONFIRMED
    order = orders.load_order(order_id)
    if order is None or order.status == OrderStatus.CONFIRMED:
        return OrderStatus.CONFIRMED if order is not None else "missing"
    # Charged, but the reservation ran out first: the stock went (or goes) back, so the money does too.
    if order.status == OrderStatus.PENDING_PAYMENT:
        settlement.release_reservation(order_id, OrderStatus.EXPIRED, order=order)
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
    the same order, never charges or settles twice. `loaded` holds orders already read for the batch
    (by id).
    """
    gateway = gateway or payment_gateway()
    order = _chargeable(Envelope.parse(envelope).field("order_id"), loaded)
    if not isinstance(order, Order):
        return order
    return settle(order.order_id, _charge(order, gateway), gateway, order)


def _chargeable(order_id: str, loaded: dict[str, Any] | None) -> Order | str:
    """The order to charge, or why there is none ("missing", or "skipped" when it is settled or overdue)."""
    order = loaded[order_id] if loaded is not None and order_id in loaded else orders.load_order(order_id)
    if order is None:
        return "missing"
    if orders.derived_status(order) != OrderStatus.PENDING_PAYMENT:
        # Already settled, or overdue: the sweeper owns an overdue reservation.
        return "skipped"
    return order


def _charge(order: Order, gateway: PaymentGateway) -> ChargeResult:
    """Charge the order with its id as the idempotency key. A charge the provider could not process
    (PaymentProviderError) is noted on the order, so the buyer sees `payment_retrying`, and raised: the
    message comes back within seconds (chalicelib.schema.retries)."""
    try:
        return gateway.charge(
            order.order_id, int(order.amount_cents), order.currency, order.payment_token or "", order.order_id
        )
    except PaymentProviderError:
        count("PaymentRetrying")
        settlement.note_payment_retrying(order.order_id)
        raise


# The event types the payments queue's consumer handles: its filter policy (topology) is the same set.
HANDLED_EVENT_TYPES = PAYMENT_EVENTS
# Charges of one batch in flight at once: a batch is at most ten records (topology), and each charge
# mostly waits on the provider, so a batch takes about one charge's latency instead of ten.
MAX_PARALLEL_CHARGES = topology.PARALLEL_CHARGES


def _placed_envelope(record: dict[str, Any]) -> Envelope | None:
    try:
        envelope = Envelope.parse(record.get("body") or "")
        if envelope.event_type in HANDLED_EVENT_TYPES:
            envelope.field("order_id")
            return envelope
    except PoisonMessageError:
        pass
    return None


def _load_batch(order_ids: set[str]) -> dict[str, Any]:
    """The batch's orders in one BatchGetItem (strongly consistent) rather than one read each."""
    if not order_ids:
        return {}
    try:
        found = {order.order_id: order for order in Order.batch_get(list(order_ids), consistent_read=True)}
    except Exception:
        logger.exception("could not read the batch's orders at once; reading them one by one")
        return {}
    # An order the batch read did not find is missing for good (orders are never deleted).
    return {order_id: found.get(order_id) for order_id in order_ids}


class PaymentBatch:
    """One payments batch: its orders read at once, charged side by side (at most MAX_PARALLEL_CHARGES in
    flight), the paid ones confirmed in one transaction; each record then reports its own outcome."""

    def __init__(self, records: list[dict[str, Any]], gateway: PaymentGateway) -> None:
        self.gateway = gateway
        order_ids = {envelope.field("order_id") for envelope in filter(None, map(_placed_envelope, records))}
        self.loaded = _load_batch(order_ids)
        self.outcomes: dict[str, ChargeResult | BaseException] = {}
        chargeable = [o for o in (_chargeable(i, self.loaded) for i in sorted(order_ids)) if isinstance(o, Order)]
        if chargeable:
            workers = min(MAX_PARALLEL_CHARGES, len(chargeable))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charge") as pool:
                results = pool.map(in_context(self._outcome), chargeable)
                self.outcomes = dict(zip((o.order_id for o in chargeable), results, strict=True))
        paid = [
            (order, result.payment_ref)
            for order in chargeable
            if isinstance(result := self.outcomes[order.order_id], ChargeResult)
            and result.status == SUCCEEDED
            and result.payment_ref is not None
        ]
        self.confirmed = settlement.confirm_payments(paid) if len(paid) > 1 else set()

    def _outcome(self, order: Order) -> ChargeResult | BaseException:
        try:
            return _charge(order, self.gateway)
        except Exception as error:  # reported by the order's own record
            return error

    def record(self, record: SQSRecord) -> None:
        """Report one record: done when its order was confirmed with the batch, else settled on its own."""
        envelope = Envelope.parse(record.body)
        if envelope.event_type not in HANDLED_EVENT_TYPES:
            return
        order_id = envelope.field("order_id")
        outcome = self.outcomes.pop(order_id, None)
        if order_id in self.confirmed:
            return
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is None:
            # Not charged with the batch (a copy of an order charged already, or one not chargeable):
            # the order's status decides, as for any redelivery.
            process_order_placed(envelope, self.gateway, self.loaded)
            return
        order = self.loaded.get(order_id)
        settle(order_id, outcome, self.gateway, order if isinstance(order, Order) else None)


def handle_payment_messages(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The `payments` SQS consumer: one record per order_placed envelope, partial batch failures reported.

    No event markers: the batch's orders are read at once anyway, and a settled order is skipped on its
    status, which is what makes a redelivery harmless."""
    batch = PaymentBatch(list(event.get("Records") or []), payment_gateway())
    # Failures are reported per record even when all fail: the same retry, without an error in the logs.
    processor = RetryingBatchProcessor(topology.PAYMENTS)
    return dict(
        process_partial_response(event=event, record_handler=batch.record, processor=processor, context=context)
    )


# --- Stripe webhook -------------------------------------------------------------------------------
# The intent events the webhook settles; any other event type is acknowledged and ignored.
WEBHOOK_VERDICTS = {"payment_intent.succeeded": SUCCEEDED, "payment_intent.payment_failed": DECLINED}
# Stripe's ids and our order ids are short ASCII; anything longer is not a real event.
_WEBHOOK_ID_MAX = 255
_HEX_DIGITS = frozenset("0123456789abcdef")


def _signature_parts(header: str | None) -> tuple[int, list[str]]:
    """The timestamp and v1 signatures of a Stripe-Signature header; InvalidSignatureError when malformed."""
    pairs = [part.split("=", 1) for part in (header or "").split(",") if "=" in part]
    stamps = [value.strip() for name, value in pairs if name.strip() == "t"]
    signatures = [value.strip() for name, value in pairs if name.strip() == "v1"]
    # ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit() and len(stamps[0]) <= 12):
        raise InvalidSignatureError("Stripe-Signature is missing or malformed")
    # A v1 signature is 64 lowercase hex digits; compare_digest refuses non-ASCII text, so sort those out first.
    valid = [value for value in signatures if len(value) == 64 and set(value) <= _HEX_DIGITS]
    if not valid:
        raise InvalidSignatureError("Stripe-Signature is missing or malformed")
    return int(stamps[0]), valid


def verify_stripe_signature(
    payload: bytes, header: str | None, secret: str, at_s: float | None = None, tolerance_s: int = WEBHOOK_TOLERANCE_S
) -> None:
    """Check a Stripe-Signature header (`t=…,v1=…`): HMAC-SHA256 of `t.payload`, at most `tolerance_s` old."""
    if not secret:
        raise InvalidSignatureError("the webhook secret is not configured")
    stamp, signatures = _signature_parts(header)
    now = time.time() if at_s is None else at_s
    if abs(now - stamp) > tolerance_s:
        raise InvalidSignatureError("Stripe-Signature is too old")
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise InvalidSignatureError("Stripe-Signature does not match")


def _webhook_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _WEBHOOK_ID_MAX or not value.isascii():
        raise InvalidRequestError(f"webhook {what} must be a short ASCII string")
    return value


@dataclass(frozen=True)
class WebhookEvent:
    """What the webhook acts on: the event type and, for an intent event, its order and intent ids."""

    kind: str
    order_id: str | None = None
    intent_id: str | None = None


def parse_webhook_event(payload: bytes) -> WebhookEvent:
    """A signed webhook body as a WebhookEvent; InvalidRequestError (400) for any body of the wrong shape.

    Every field is checked before it is used: an object where one is expected, ids as short strings."""
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequestError("webhook body is not valid JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise InvalidRequestError("webhook body must be an event object with a type")
    kind = event["type"]
    data = event.get("data", {})
    if not isinstance(data, dict) or not isinstance(data.get("object", {}), dict):
        raise InvalidRequestError("webhook data.object must be an object")
    if kind not in WEBHOOK_VERDICTS:
        return WebhookEvent(kind)
    intent = data.get("object", {})
    metadata = intent.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidRequestError("webhook data.object.metadata must be an object")
    if metadata.get("order_id") is None:
        return WebhookEvent(kind)  # an intent this service did not create
    return WebhookEvent(kind, _webhook_id(metadata["order_id"], "order_id"), _webhook_id(intent.get("id"), "intent id"))


def handle_webhook(payload: bytes, signature_header: str | None) -> dict[str, Any]:
    """POST /payments/webhook: apply payment_intent.succeeded / payment_failed to the order, idempotently."""
    verify_stripe_signature(payload, signature_header, secrets.stripe_value(get_settings(), "webhook_secret"))
    event = parse_webhook_event(payload)
    if event.order_id is not None:
        settle(event.order_id, ChargeResult(WEBHOOK_VERDICTS[event.kind], event.intent_id), payment_gateway())
    return {"received": True}
