"""The payment providers without a network: the fake provider's tokens and the Stripe adapter."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest

from chalicelib.core.errors import PaymentProviderError
from chalicelib.delivery import payments


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


def test_the_fake_gateway_takes_its_latency_per_call_and_the_setting_reaches_it() -> None:
    import time

    from chalicelib.core.config import settings_from_env
    from chalicelib.wiring import bootstrap

    slow = payments.FakePaymentGateway(latency_ms=60)
    started = time.monotonic()
    assert slow.charge("o1", 100, "USD", "tok_visa", "o1").status == payments.SUCCEEDED
    slow.refund("ref", 100, "r1")
    assert time.monotonic() - started >= 0.12  # a lower bound only: sleeping never takes less
    settings = settings_from_env({"LIVEDROP_PAYMENT_LATENCY_MS": "300"})
    assert settings.payment_latency_ms == 300 and settings_from_env({}).payment_latency_ms == 0
    with bootstrap.override(settings=settings):
        gateway = bootstrap._make_payment_gateway()
    assert isinstance(gateway, payments.FakePaymentGateway) and gateway.latency_ms == 300


@pytest.mark.parametrize("text", ["-1", "60001", "3.5", "fast"])
def test_the_payment_latency_flag_refuses_what_is_no_whole_number_of_milliseconds(text: str) -> None:
    import argparse

    from devstack.__main__ import _latency_ms

    assert _latency_ms("0") == 0 and _latency_ms("300") == 300
    with pytest.raises(argparse.ArgumentTypeError):
        _latency_ms(text)
