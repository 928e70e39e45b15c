"""What every model shares: its table name and endpoint bound to the current Settings on first use."""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
import pynamodb.connection.base
from pynamodb.attributes import NumberAttribute
from pynamodb.models import Model

from chalicelib.core.config import Settings, get_settings

NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"


class _ThreadSession(threading.local):
    session: botocore.session.Session | None = None


_thread_session = _ThreadSession()


def thread_session() -> botocore.session.Session:
    """The botocore session every model's connection opens its client with, one per thread.

    PynamoDB opens a session per model and thread, and a session costs about 5 ms of CPU to build (its
    event handlers): twenty models made every execution environment's first calls pay 100 ms for them.
    The clients stay one per model; only the session they are made from is shared, within a thread
    (botocore sessions are not thread-safe, its clients are)."""
    found = _thread_session.session
    if found is None:
        found = _thread_session.session = botocore.session.get_session()
    return found


pynamodb.connection.base.get_session = thread_session


class _BoundMeta(type):
    """Meta classes whose table name is the current Settings' (read on first use, never at import).

    PynamoDB reads Meta.table_name before anything else when it opens a model's connection, so that read
    binds every model to the Settings: their region and DynamoDB endpoint, and a fresh connection when the
    Settings were replaced (a test's override, the dev stack provisioned anew). Otherwise each model keeps
    its one connection for the life of the execution environment."""

    @property
    def table_name(cls) -> str:
        settings = get_settings()
        if _bound.settings is not settings:
            bind(settings)
        return settings.table_name(cls.table)  # type: ignore[attr-defined]


class _Meta(metaclass=_BoundMeta):
    """Shared Meta attributes: region, endpoint (both set by bind) and on-demand billing."""

    table = ""  # the table's name without the stage prefix
    # Placeholders, so PynamoDB's class setup finds them without reading the environment.
    region: str | None = None
    host: str | None = None
    billing_mode = "PAY_PER_REQUEST"
    max_pool_connections = 64
    # The settings' AWS call timeouts and retries (set by bind, like the endpoint).
    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 10.0
    max_retry_attempts = 1


class _Binding:
    settings: Settings | None = None


_bound = _Binding()
_bind_lock = threading.Lock()


def _meta(name: str, **extra: Any) -> Any:
    return _BoundMeta("Meta", (_Meta,), {"table": name, **extra})


def _index_meta(name: str, projection: Any) -> Any:
    return type("Meta", (), {"index_name": name, "projection": projection})


def bind(settings: Settings) -> None:
    """Point every model at `settings`' region and DynamoDB endpoint; their connections open anew on next use."""
    with _bind_lock:
        if _bound.settings is settings:
            return
        _Meta.region = settings.region
        _Meta.host = settings.endpoint_url("dynamodb")
        _Meta.connect_timeout_seconds = settings.aws_connect_timeout_seconds
        _Meta.read_timeout_seconds = settings.aws_read_timeout_seconds
        _Meta.max_retry_attempts = settings.aws_max_attempts - 1
        for model in _bound_models(Model):
            model._connection = None
        _bound.settings = settings


def _bound_models(root: type[Model]) -> list[type[Model]]:
    """Every model class whose Meta is bound to the Settings (each concept module of this package)."""
    found = []
    for model in root.__subclasses__():
        if isinstance(getattr(model, "Meta", None), _BoundMeta):
            found.append(model)
        found += _bound_models(model)
    return found


def slot_counter(prefix: str, slot: int) -> NumberAttribute:
    """A counter of one slot of a drop's timeline (chalicelib.core.timeline), for an update: top-level
    numbers named prefix + slot (`s0`, `j12`), since ADD works on top-level attributes only."""
    return NumberAttribute(attr_name=f"{prefix}{slot}")


def slot_counters(raw: dict[str, Any], prefix: str) -> dict[int, int]:
    """The slot counters of one prefix in a raw item (as GetItem returns it)."""
    return {
        int(name[len(prefix) :]): int(value["N"])
        for name, value in raw.items()
        if name.startswith(prefix) and name[len(prefix) :].isdigit() and "N" in value
    }
