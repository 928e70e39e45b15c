"""The ports: the dependencies a module is handed rather than builds, filled by the composition root.

This module sits at the bottom of chalicelib and imports none of it, so the domain and the adapters ask
it for the payment gateway, the pusher, the DynamoDB connection and the token verifier without reaching
up to chalicelib.wiring.bootstrap. The root (bootstrap, at the top) registers how each is made (`provide`);
each is made on its first use, once, and tests replace them through `bootstrap.override`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

NAMES = ("payment_gateway", "pusher", "dynamodb", "token_verifier")

_lock = threading.RLock()
_makers: dict[str, Callable[[], Any]] = {}
_built: dict[str, Any] = {}
# Each `replaced` block pushes its replacements; the innermost wins.
_overrides: list[dict[str, Any]] = []


@dataclass
class PushReport:
    """What happened to one frame sent to a set of connections."""

    delivered: int = 0
    failed: int = 0
    gone: list[str] = field(default_factory=list)


class Pusher(Protocol):
    """Frames to WebSocket connections (chalicelib.delivery.pusher over API Gateway's @connections API)."""

    def push(
        self, connection_ids: Iterable[str], frame: dict[str, Any], occurred_at_ms: int | None = None
    ) -> PushReport: ...

    def reply(self, connection_id: str, frame: dict[str, Any]) -> None: ...

    def is_gone(self, connection_id: str) -> bool: ...


def provide(**makers: Callable[[], Any]) -> None:
    """How each dependency is made (the composition root calls this once, when it is imported)."""
    unknown = set(makers) - set(NAMES)
    if unknown:
        raise TypeError(f"no port called {', '.join(sorted(unknown))}")
    with _lock:
        _makers.update(makers)


def payment_gateway() -> Any:
    """The payment provider the settings name (a chalicelib.delivery.payments.PaymentGateway)."""
    return _get("payment_gateway")


def pusher() -> Pusher:
    """What sends frames to WebSocket connections."""
    result: Pusher = _get("pusher")
    return result


def dynamodb() -> Any:
    """The PynamoDB connection transactions go through."""
    return _get("dynamodb")


def token_verifier() -> Any:
    """What checks the user pool's id tokens (a chalicelib.domain.tokens.TokenVerifier)."""
    return _get("token_verifier")


@contextmanager
def replaced(dependencies: dict[str, Any]) -> Iterator[None]:
    """Run the block with these dependencies instead of the built ones."""
    with _lock:
        _overrides.append(dependencies)
    try:
        yield
    finally:
        with _lock:
            _overrides.remove(dependencies)


def forget_built() -> None:
    """Forget what was made: the next use makes each again (through the settings of that moment)."""
    with _lock:
        _built.clear()


def built_count() -> int:
    return len(_built)


def _get(name: str) -> Any:
    for layer in reversed(_overrides):
        if name in layer:
            return layer[name]
    found = _built.get(name)
    if found is None:
        with _lock:
            found = _built.get(name)
            if found is None:
                make = _makers.get(name)
                if make is None:
                    raise RuntimeError(f"no {name}: import chalicelib.wiring.bootstrap (the composition root) first")
                found = _built[name] = make()
    return found
