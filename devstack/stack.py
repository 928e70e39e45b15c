"""The whole local stack in one object: embedded AWS, gateways, pumps, app, optional demo data."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from devstack.environments import FunctionPool, concurrency_from_env
from devstack.moto_backend import EmbeddedAws
from devstack.resources import provision

log = logging.getLogger("devstack")
ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[dict[str, Any], Any], Any]


class DevStack:
    """Starts everything on 127.0.0.1 and stops all of it again."""

    def __init__(
        self,
        http_port: int = 8000,
        ws_port: int = 8001,
        stage: str = "dev",
        concurrency: dict[str, int] | None = None,
    ) -> None:
        self.http_port = http_port
        self.ws_port = ws_port
        self.stage = stage
        self.aws = EmbeddedAws()
        self.env: dict[str, str] = {}
        self.app_module: ModuleType | None = None
        self.http: Any = None
        self.ws: Any = None
        self.pumps: list[Any] = []
        self.unwired: list[str] = []
        # Each function's execution environments, by handler name (see devstack.environments).
        self.pools: dict[str, FunctionPool] = {}
        self.concurrency = {**concurrency_from_env(), **(concurrency or {})}

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> DevStack:
        from devstack.ws_gateway import WebSocketGateway

        try:
            endpoint = self.aws.start()
            self.env = provision(endpoint, stage=self.stage)
            # The gateway must listen before the app is imported: the app's pusher reads the
            # management endpoint from its settings. Its handlers resolve the app lazily.
            self.ws = WebSocketGateway(
                {route: self.pool(name, self._ws_handler(name)) for route, name in _WS_ROUTES.items()},
                port=self.ws_port,
            )
            self.ws.start()
            os.environ["LIVEDROP_WS_MANAGEMENT_ENDPOINT"] = self.ws.management_endpoint
            self.env["LIVEDROP_WS_MANAGEMENT_ENDPOINT"] = self.ws.management_endpoint
            self._load_app()
            self._start_http()
            self._start_pumps()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for pump in reversed(self.pumps):
            pump.stop()
        self.pumps = []
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.ws is not None:
            self.ws.stop()
            self.ws = None
        for pool in self.pools.values():
            pool.stop()
        self.pools = {}
        self.aws.stop()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- urls ------------------------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return self.http.url

    @property
    def ws_url(self) -> str:
        return self.ws.url

    @property
    def web_url(self) -> str:
        return f"{self.http.url}/web/"

    # --- wiring ----------------------------------------------------------------------------
    def handler(self, name: str) -> Handler | None:
        """The app's Lambda handler called `name`, if app.py defines it."""
        assert self.app_module is not None
        found = getattr(self.app_module, name, None)
        return found if callable(found) else None

    def pool(self, name: str, handler: Handler) -> FunctionPool:
        """The execution environments of the function `name` (made on first use, running `handler`)."""
        found = self.pools.get(name)
        if found is None:
            from infra.access import ACCESS

            access = ACCESS.get(name)
            # A limit given to the stack, else the function's reserved concurrency in infra, else the default.
            reserved = getattr(access, "reserved_concurrency", None)
            found = FunctionPool(
                name,
                handler,
                concurrency=self.concurrency.get(name) or reserved,
                init=_warm_clients,
                timeout_seconds=access.timeout if access else 60,
                memory_mb=access.memory if access else 128,
            )
            self.pools[name] = found
        return found

    def _load_app(self) -> None:
        from chalicelib import aws
        from chalicelib.config import get_settings

        get_settings.cache_clear()
        aws.reset_clients()
        self.app_module = importlib.import_module("app")

    def _ws_handler(self, name: str) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            handler = self.handler(name) if self.app_module is not None else None
            if handler is None:
                return {"statusCode": 503}
            return handler(event, context)

        return invoke

    def _start_http(self) -> None:
        from chalicelib.tokens import verifier
        from devstack.http_gateway import HttpGateway
        from infra.access import API_HANDLER

        assert self.app_module is not None
        self.http = HttpGateway(
            self.app_module.app,
            verifier().claims,
            port=self.http_port,
            static_dir=ROOT / "web",
            web_config={"ws_url": self.ws.url},
            pool=self.pool(API_HANDLER, self.app_module.app),
        )
        self.http.start()

    def _start_pumps(self) -> None:
        from chalicelib import topology
        from chalicelib.config import get_settings
        from devstack.pumps import PeriodicPump, QueuePump, SchedulePump, StreamPump

        settings = get_settings()
        endpoint = self.aws.endpoint
        for source in topology.STREAM_SOURCES:
            handler = self.handler(source.handler)
            if handler is None:
                self.unwired.append(source.handler)
                continue
            pool = self.pool(source.handler, handler)
            self.pumps.append(
                StreamPump(endpoint, settings.table_name(source.table), pool, batch_size=source.batch_size)
            )
        for queue in topology.QUEUE_SOURCES:
            handler = self.handler(queue.handler)
            if handler is None:
                self.unwired.append(queue.handler)
                continue
            pool = self.pool(queue.handler, handler)
            self.pumps.append(QueuePump(endpoint, settings.queue_url(queue.queue), pool, batch_size=queue.batch_size))
        self.pumps.append(SchedulePump(endpoint, settings.scheduler_group, self._schedule_target))
        sweeper = self.handler("sweeper")
        if sweeper is not None:
            self.pumps.append(PeriodicPump(self.pool("sweeper", sweeper), SWEEP_SECONDS, "sweeper"))
        for pump in self.pumps:
            pump.start()
        if self.unwired:
            log.warning("handlers not in app.py yet, not wired: %s", ", ".join(sorted(set(self.unwired))))

    def _schedule_target(self, arn: str) -> Handler:
        from chalicelib.config import get_settings

        prefix = get_settings().function_arn_prefix
        name = arn[len(prefix) :] if arn.startswith(prefix) else arn.rsplit(":", 1)[-1]
        handler = self.handler(name)
        if handler is None:
            raise LookupError(f"no handler for schedule target {arn}")
        return self.pool(name, handler)


_WARM_LOCK = threading.Lock()


def _warm_clients() -> None:
    """An environment's init: the DynamoDB clients every function uses, built before its first invocation
    rather than during it (in-process they are shared, so only the first environment pays for them)."""
    if "chalicelib.models" not in sys.modules:
        return  # the app is not loaded yet (the WebSocket functions' pools exist before it)
    from chalicelib import db, models

    # One at a time: environments starting together would otherwise each build the same clients.
    with _WARM_LOCK:
        for model in models.ALL_MODELS:
            model._get_connection().connection.client  # noqa: B018 - built on first access
        db.connection().client  # noqa: B018


# The sweeper's rate in AWS (Chalice's @app.schedule(Rate(1, MINUTES))).
SWEEP_SECONDS = 60.0
_WS_ROUTES = {"$connect": "ws_connect", "$disconnect": "ws_disconnect", "$default": "ws_message"}
