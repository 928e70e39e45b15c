"""The composition root: what the functions run with, built in one place on first use.

Settings (from the environment), the AWS clients, the payment gateway and the pusher are made here the
first time something asks for them, once per execution environment, and handed to whoever asks. Importing
chalicelib reads no setting and opens no connection: a cold start pays only for what it uses, and a test
or the dev stack can choose the settings after the import. The models bind themselves to `settings()` on
their first table access (chalicelib.models).

Tests hand in fakes through `override`, never by patching a module's private globals:

    with bootstrap.override(payment_gateway=FakePaymentGateway()):
        ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from chalice import Chalice, CognitoUserPoolAuthorizer
from pynamodb.connection import Connection

from chalicelib import aws, sibling
from chalicelib.config import Settings, get_settings, use_settings

if TYPE_CHECKING:
    from chalicelib.payments import PaymentGateway
    from chalicelib.pusher import PushReport
    from chalicelib.tokens import TokenVerifier


class Pusher(Protocol):
    """Frames to WebSocket connections (chalicelib.pusher over API Gateway's @connections API)."""

    def push(
        self, connection_ids: Iterable[str], frame: dict[str, Any], occurred_at_ms: int | None = None
    ) -> PushReport: ...

    def reply(self, connection_id: str, frame: dict[str, Any]) -> None: ...

    def is_gone(self, connection_id: str) -> bool: ...


_lock = threading.RLock()
_built: dict[str, Any] = {}
# Each `override` pushes its replacements; the innermost wins.
_overrides: list[dict[str, Any]] = []
_NAMES = ("settings", "payment_gateway", "pusher", "dynamodb", "token_verifier")


def settings() -> Settings:
    """The Settings every module reads (chalicelib.config.get_settings gives the same object)."""
    return get_settings()


def payment_gateway() -> PaymentGateway:
    """The payment provider the settings name ("fake" or "stripe"), made once."""
    return _dependency("payment_gateway", _make_payment_gateway)


def pusher() -> Pusher:
    """What sends frames to WebSocket connections, made once."""
    return _dependency("pusher", _make_pusher)


def dynamodb() -> Connection:
    """The PynamoDB connection transactions go through (the models keep one each), made once; inside an
    API request, the API's (its read timeout and deadline, chalicelib.aws.request_deadline)."""
    if aws.in_request():
        return _dependency("dynamodb", _make_dynamodb, built_as="dynamodb#api")
    return _dependency("dynamodb", _make_dynamodb)


def token_verifier() -> TokenVerifier:
    """What checks the user pool's id tokens (it keeps the pool's signing keys), made once."""
    return _dependency("token_verifier", _make_token_verifier)


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
    with _lock:
        _overrides.append(dependencies)
        previous = _switch_settings(dependencies["settings"]) if replaces_settings else None
    try:
        yield
    finally:
        with _lock:
            _overrides.remove(dependencies)
            if replaces_settings:
                _switch_settings(previous)


def reset() -> None:
    """Forget everything built: the next use reads the environment again and opens new clients.

    For a process whose environment changed under it (the dev stack after provisioning)."""
    with _lock:
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


def _dependency(name: str, make: Callable[[], Any], built_as: str | None = None) -> Any:
    for layer in reversed(_overrides):
        if name in layer:
            return layer[name]
    key = built_as or name
    found = _built.get(key)
    if found is None:
        with _lock:
            found = _built.get(key)
            if found is None:
                found = _built[key] = make()
    return found


def _switch_settings(settings: Settings | None) -> Settings | None:
    previous = use_settings(settings)
    aws.reset_clients()
    # What was built or read through the old settings (a Stripe key, an endpoint, a signing key, rows
    # cached from another table) is made or read again through the new ones.
    _built.clear()
    _forget_values()
    return previous


def _forget_values() -> None:
    # Not imported: these modules import this one (and a function never imports, see chalicelib.sibling).
    admissions, catalog, secrets = sibling("admissions"), sibling("catalog"), sibling("secrets")

    secrets.reset()
    admissions.forget_key()
    for cache in (catalog.drop_cache, catalog.product_cache, catalog.terms_cache):
        cache.clear()


def _make_dynamodb() -> Connection:
    current = get_settings()
    made = Connection(
        region=current.region,
        host=current.endpoint_url("dynamodb"),
        max_pool_connections=64,
        connect_timeout_seconds=current.aws_connect_timeout_seconds,
        read_timeout_seconds=aws.read_timeout(current),
        max_retry_attempts=current.aws_max_attempts - 1,
    )
    aws.fail_fast(made.client)
    return made


def _make_token_verifier() -> TokenVerifier:
    # Not imported: tokens asks this module for its verifier.
    current = get_settings()
    return sibling("tokens").TokenVerifier(current.cognito_issuer, current.user_pool_client_id, current.jwks_url)


def _make_payment_gateway() -> PaymentGateway:
    # Not imported: payments asks this module for its gateway.
    payments, secrets = sibling("payments"), sibling("secrets")

    current = get_settings()
    if current.payment_provider == "stripe":
        return payments.StripePaymentGateway(lambda: secrets.stripe_value(current, "api_key"))
    if current.payment_provider == "fake":
        return payments.FakePaymentGateway(latency_ms=current.payment_latency_ms)
    raise ValueError(f"unknown payment provider {current.payment_provider!r}")


def _make_pusher() -> Pusher:
    # Not imported: the pusher's module reaches the connections, which import this module's users.
    return sibling("pusher")
