"""The payment providers without a network: the fake provider's tokens and the Stripe adapter."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest

from chalicelib import payments
from chalicelib.errors import PaymentProviderError


def test_fake_gateway_tokens() -> None:
    fake = payments.FakePaymentGateway()
    assert fake.charge("o1", 100, "USD", "tok_visa", "o1").status == payments.SUCCEEDED
    assert fake.charge("o1", 100, "USD", "tok_visa", "o1") == fake.charge("o1", 100, "USD", "tok_visa", "o1")
    assert fake.charge("o2", 100, "USD", "tok_chargeDeclined", "o2").status == payments.DECLINED
    for _ in range(2):
        with pytest.raises(PaymentProviderError):
            fake.charge("o3", 100, "USD", "tok_processingError", "o3")
    assert fake.charge("o3", 100, "USD", "tok_processingError", "o3").status == payments.SUCCEEDED
    assert fake.charged == ["o1", "o3"]


class _Reply(io.BytesIO):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(json.dumps(body).encode())
        self.status = status

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_stripe_adapter_speaks_payment_intents(monkeypatch) -> None:
    sent = []
    replies = [
        _Reply(200, {"id": "pi_1", "status": "succeeded"}),
        urllib.error.HTTPError(
            "u",
            402,
            "declined",
            {},
            io.BytesIO(
                json.dumps(
                    {
                        "error": {
                            "type": "card_error",
                            "decline_code": "insufficient_funds",
                            "payment_intent": {"id": "pi_2"},
                        }
                    }
                ).encode()
            ),
        ),
        urllib.error.HTTPError("u", 503, "busy", {}, io.BytesIO(b"{}")),
        urllib.error.URLError("no route"),
    ]

    def fake_urlopen(request, timeout):
        sent.append(request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    monkeypatch.setattr(payments.urllib.request, "urlopen", fake_urlopen)
    stripe = payments.StripePaymentGateway("sk_test_x")
    assert stripe.charge("or_1", 1999, "USD", "pm_card_visa", "or_1") == payments.ChargeResult("succeeded", "pi_1")
    request = sent[0]
    assert request.full_url == "https://api.stripe.com/v1/payment_intents"
    assert request.get_header("Idempotency-key") == "or_1"
    assert request.get_header("Authorization") == "Bearer sk_test_x"
    form = dict(pair.split("=", 1) for pair in request.data.decode().split("&"))
    assert form["amount"] == "1999" and form["currency"] == "usd" and form["confirm"] == "true"
    assert form["payment_method"] == "pm_card_visa" and form["metadata%5Border_id%5D"] == "or_1"
    assert stripe.charge("or_2", 1, "USD", "pm_x", "or_2") == payments.ChargeResult(
        "declined", "pi_2", "insufficient_funds"
    )
    for _ in range(2):
        with pytest.raises(PaymentProviderError):
            stripe.charge("or_3", 1, "USD", "pm_x", "or_3")
