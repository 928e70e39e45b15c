"""The composition root: what the functions run with, built in one place on first use.

Settings (from the environment), the AWS clients, the payment gateway and the pusher are made here the
first time something asks for them, once per execution environment. This module sits on top of
chalicelib: it registers how each dependency is made in chalicelib.core.ports when it is imported (app.py
and the dev stack import it first), and modules ask the ports, never this module. Importing
chalicelib reads no setting and opens no connection: a cold start pays only for what it uses, and a test
or the dev stack can choose the settings after the import. The models bind themselves to `settings()` on
their first table access (chalicelib.schema.models).

Tests hand in fakes through `override`, never by patching a module's private globals:

    with bootstrap.override(payment_gateway=FakePaymentGateway()):
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalice import Chalice, CognitoUserPoolAuthorizer
from pynamodb.connection import Connection

from chalicelib.core import aws, cache, ports
from chalicelib.core.config import Settings, get_settings, use_settings
from chalicelib.core.ports import Pusher
from chalicelib.delivery import payments
from chalicelib.delivery import pusher as websocket_pusher
from chalicelib.delivery.payments import PaymentGateway
from chalicelib.domain.tokens import TokenVerifier
from chalicelib.schema import secrets
from chalicelib.schema.models import ALL_MODELS

_NAMES = ("settings", *ports.NAMES)
_log = logging.getLogger("livedrop.bootstrap")


def settings() -> Settings:
    """The Settings every module reads (chalicelib.core.config.get_settings gives the same object)."""
    return get_settings()


def payment_gateway() -> PaymentGateway:
    """The payment provider the settings name ("fake" or "stripe"), made once."""
    gateway: PaymentGateway = ports.payment_gateway()
    return gateway


def pusher() -> Pusher:
    """What sends frames to WebSocket connections, made once."""
    return ports.pusher()


def dynamodb() -> Connection:
    """The PynamoDB connection transactions go through (the models keep one each), made once."""
    connection: Connection = ports.dynamodb()
    return connection


def warm() -> None:
    """Build what the handlers call through before the first invocation: the settings, the SQS, SNS and
    DynamoDB clients, the transactions' connection and every model's. The dev stack calls it at each
    execution environment's init (not counted against the timeout): a timeout it scales down (--timeout-
    scale) then scales the work an invocation may do, not the fixed cost of its clients, a fraction of a
    second of a 20 s timeout in Lambda. app.py does not: importing it stays cheap (bench.coldstart), and
    Lambda builds the clients on first use. Best effort: what fails here is built on first use."""
    try:
        settings()
        built = [aws.client(service) for service in ("sqs", "sns", "dynamodb")]
        built += [dynamodb().client, *(model._get_connection().connection.client for model in ALL_MODELS)]
        _log.debug("built %d clients at init", len(built))
    except Exception:
        _log.warning("could not build the clients at init", exc_info=True)


def token_verifier() -> TokenVerifier:
    """What checks the user pool's id tokens (it keeps the pool's signing keys), made once."""
    verifier: TokenVerifier = ports.token_verifier()
    return verifier


def client(service: str, endpoint_url: str | None = None) -> Any:
    """The shared boto3 client of `service` at the settings' endpoint for it (or at `endpoint_url`)."""
    return aws.client(service, endpoint_url)


@contextmanager
def override(**dependencies: Any) -> Iterator[None]:
    """Run the block with these dependencies (settings=, payment_gateway=, pusher=, dynamodb=,
    token_verifier=) instead of the built ones.

    Overriding the settings rebinds the models and forgets the clients for the block, and again after it."""
    unknown = set(dependencies) - set(_NAMES)
    if unknown:
        raise TypeError(f"nothing called {', '.join(sorted(unknown))} to override (known: {', '.join(_NAMES)})")
    replaces_settings = "settings" in dependencies
    previous = _switch_settings(dependencies["settings"]) if replaces_settings else None
    try:
        with ports.replaced({k: v for k, v in dependencies.items() if k != "settings"}):
            yield
    finally:
        if replaces_settings:
            _switch_settings(previous)


def reset() -> None:
    """Forget everything built and every cache: the next use reads the environment again and opens new
    clients.

    For a process whose environment changed under it (the dev stack after provisioning)."""
    _switch_settings(None)


def chalice_app(name: str) -> Chalice:
    """The Chalice app, its debug flag read from the settings on the first invocation, not at import."""
    return _SettingsChalice(app_name=name)


class _SettingsChalice(Chalice):
    _debug_from_settings = True

    @property
    def debug(self) -> bool:
        if self._debug_from_settings:
            self.debug = get_settings().debug
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug_from_settings = False
        self._debug = value
        self._configure_log_level()


def user_pool_authorizer(name: str) -> CognitoUserPoolAuthorizer:
    """The Cognito authorizer of the settings' user pool, whose ARN is read when the API is described
    (packaging), not when app.py is imported."""
    return _UserPoolAuthorizer(name, provider_arns=[])


class _UserPoolAuthorizer(CognitoUserPoolAuthorizer):
    def to_swagger(self) -> dict[str, Any]:
        self._provider_arns = [get_settings().user_pool_arn]
        return super().to_swagger()


def _switch_settings(settings: Settings | None) -> Settings | None:
    previous = use_settings(settings)
    aws.reset_clients()
    # What was built or read through the old settings (a Stripe key, an endpoint, a signing key, rows
    # cached from another table) is made or read again through the new ones.
    ports.forget_built()
    cache.clear_all()
    return previous


def _make_dynamodb() -> Connection:
    current = get_settings()
    return Connection(
        region=current.region,
        host=current.endpoint_url("dynamodb"),
        max_pool_connections=64,
        connect_timeout_seconds=current.aws_connect_timeout_seconds,
        read_timeout_seconds=current.aws_read_timeout_seconds,
        max_retry_attempts=current.aws_max_attempts - 1,
    )


def _make_token_verifier() -> TokenVerifier:
    current = get_settings()
    return TokenVerifier(current.cognito_issuer, current.user_pool_client_id, current.jwks_url)


def _make_payment_gateway() -> PaymentGateway:
    current = get_settings()
    if current.payment_provider == "stripe":
        return payments.StripePaymentGateway(lambda: secrets.stripe_value(current, "api_key"))
    if current.payment_provider == "fake":
        return payments.FakePaymentGateway(latency_ms=current.payment_latency_ms)
    raise ValueError(f"unknown payment provider {current.payment_provider!r}")


def _make_pusher() -> Pusher:
    return websocket_pusher


ports.provide(
    payment_gateway=_make_payment_gateway,
    pusher=_make_pusher,
    dynamodb=_make_dynamodb,
    token_verifier=_make_token_verifier,
)
