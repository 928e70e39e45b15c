"""The whole local stack in one object: embedded AWS, gateways, pumps, app, optional demo data."""

from __future__ import annotations

import importlib
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from chalicelib.core.config import get_settings
from chalicelib.domain.tokens import verifier
from chalicelib.schema import topology
from chalicelib.schema.functions import ACCESS, API_HANDLER
from chalicelib.schema.topology import Fn
from chalicelib.wiring import bootstrap
from devstack import app_copies, heap, iam, sdk_data
from devstack.environments import FunctionPool, current_code
from devstack.identity import aws_client
from devstack.lambda_runtime import concurrency_from_env, pools_per_environment, serve_concurrently
from devstack.moto_backend import EmbeddedAws
from devstack.pollers import PeriodicPump, Pump, QueuePump, SchedulePump, StreamPump, stop_all
from devstack.resources import provision
from devstack.ws_process import GatewayProcess

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
        data_dir: str | Path | None = None,
        concurrency: dict[str, int] | None = None,
        timeout_scale: float = 1.0,
        payment_latency_ms: int | None = None,
    ) -> None:
        self.http_port = http_port
        self.ws_port = ws_port
        self.stage = stage
        # Opt-in: the embedded AWS restores its state from data_dir and saves it there on stop.
        self.aws = EmbeddedAws(data_dir=data_dir)
        self.env: dict[str, str] = {}
        self.app_module: ModuleType | None = None
        self.http: Any = None
        self.ws: GatewayProcess | None = None
        self.pumps: list[Pump] = []
        self.unwired: list[str] = []
        self.iam: iam.Enforcer | None = None
        # Each function's execution environments, by handler name (see devstack.environments).
        self.pools: dict[str, FunctionPool] = {}
        self.concurrency = {**concurrency_from_env(), **(concurrency or {})}
        # --timeout-scale: every function's timeout and every queue's visibility timeout times this.
        if not (math.isfinite(timeout_scale) and timeout_scale > 0):
            raise ValueError(f"timeout_scale must be a positive number, not {timeout_scale!r}")
        self.timeout_scale = timeout_scale
        # The fake payment provider's time per charge (None: LIVEDROP_PAYMENT_LATENCY_MS, else 0 for speed).
        self.payment_latency_ms = payment_latency_ms

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> DevStack:
        sdk_data.install()  # every client the stack and its functions' copies build parses botocore's files once
        try:
            # The WebSocket gateway runs in a process of its own (devstack.ws_process says why); it starts
            # while the embedded AWS does.
            self.ws = GatewayProcess(port=self.ws_port)
            self.ws.launch()
            if self.payment_latency_ms is not None:
                os.environ[PAYMENT_LATENCY_ENV] = str(self.payment_latency_ms)
            self.aws.start()
            self.env = provision(
                self.aws.messaging_endpoint,
                stage=self.stage,
                dynamodb_endpoint=self.aws.endpoint,
                timeout_scale=self.timeout_scale,
            )
            self.env[PAYMENT_LATENCY_ENV] = os.environ.get(PAYMENT_LATENCY_ENV, "0")
            self.enforce_iam()
            # The gateway must listen before the app is imported: the app's pusher reads the
            # management endpoint from its settings. Its handlers resolve the app lazily.
            self.ws.start({route: self.pool(name, self._ws_handler(name)) for route, name in _WS_ROUTES.items()})
            os.environ["LIVEDROP_WS_MANAGEMENT_ENDPOINT"] = self.ws.management_endpoint
            self.env["LIVEDROP_WS_MANAGEMENT_ENDPOINT"] = self.ws.management_endpoint
            self._load_app()
            self._start_http()
            self._start_pumps()
            heap.settle(collect=True)  # devstack.heap: full collections then scan what requests allocate
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # All pumps are told at once, then joined: one slow batch does not hold up the others' stop.
        stop_all(reversed(self.pumps))
        self.pumps = []
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.ws is not None:
            self.ws.stop()
            self.ws = None
        # Every function is told at once; together they get a few seconds to finish what runs.
        for pool in self.pools.values():
            pool.request_stop()
        deadline = time.monotonic() + POOL_STOP_SECONDS
        for pool in self.pools.values():
            pool.finish_stop(deadline)
        self.pools = {}
        self.aws.stop()
        if self.iam is not None:
            usage = os.environ.get("LIVEDROP_IAM_USAGE")
            if usage:
                # What the functions called, for comparing with their grants (least privilege).
                lines = ["\t".join(u) for u in sorted(self.iam.used)]
                lines += ["\t".join(("DENIED", *d)) for d in sorted(set(self.iam.denied))]
                Path(usage).write_text("\n".join(lines) + "\n")
            iam.uninstall(self.iam)
            self.iam = None
        heap.release()

    def failure(self) -> str | None:
        """One line on a child process that died under the running stack, or None while all is well."""
        children = [("the embedded AWS", self.aws.pid, self.aws.exit_code)]
        if self.ws is not None:
            children.append(("the WebSocket gateway", self.ws.pid, self.ws.exit_code))
        for what, pid, code in children:
            if code is not None:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                return f"{what} (pid {pid}) {how}; the dev stack cannot serve without it"
        return None

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
        assert self.ws is not None, "the stack is not started"
        return self.ws.url

    @property
    def web_url(self) -> str:
        return f"{self.http.url}/web/"

    # --- wiring ----------------------------------------------------------------------------
    def handler(self, name: str) -> Handler | None:
        """The app's Lambda handler called `name`, if app.py defines it: run from the copy of the app of
        the environment that invokes it (devstack.app_copies), or from the stack's own outside one."""
        assert self.app_module is not None
        found = getattr(self.app_module, name, None)
        if not callable(found):
            return None

        def invoke(event: dict[str, Any], context: Any) -> Any:
            code = current_code()
            return (code.handler(name) if code is not None else getattr(self.app_module, name))(event, context)

        invoke.name = getattr(found, "name", name)  # type: ignore[attr-defined]  # what the pumps name the context after
        return invoke

    def patched(self, module: str, **attributes: Any) -> Any:
        """A block in which the app's module `module` (e.g. "chalicelib.delivery.consumers") has these attributes in
        every function's environments, present and new, and in the stack's own copy: how a test replaces
        a module global, since each environment imports the app afresh."""
        return app_copies.patched(module, **attributes)

    def modules(self, module: str) -> list[ModuleType]:
        """The app's module `module` (e.g. "chalicelib.domain.catalog") in the stack's own copy and in every
        function's environments alive now."""
        return app_copies.every(module)

    def override(self, **dependencies: Any) -> Any:
        """A block with chalicelib.wiring.bootstrap.override(**dependencies) in every environment and in the stack's
        own copy (settings=, payment_gateway=, ...)."""
        return app_copies.overridden(**dependencies)

    def pool(self, name: str, handler: Handler) -> FunctionPool:
        """The execution environments of the function `name` (made on first use, running `handler`)."""
        found = self.pools.get(name)
        if found is None:
            access = ACCESS.get(name)
            # A limit given to the stack, else the function table's reserved concurrency, else its dev_concurrency.
            reserved = getattr(access, "reserved_concurrency", None)
            found = FunctionPool(
                name,
                # Every invocation runs as the function (IAM: its role), set inside the environment's thread.
                iam.as_function(name, handler),
                concurrency=self.concurrency.get(name) or reserved,
                timeout_seconds=(access.timeout if access else DEFAULT_TIMEOUT) * self.timeout_scale,
                memory_mb=access.memory if access else DEFAULT_MEMORY,
                # The function's own copy of the app, imported at its first environment's init, which also
                # builds its clients (chalicelib.wiring.bootstrap.warm says why).
                code=function_code,
                init=_warm,
            )
            self.pools[name] = found
        return found

    def _load_app(self) -> None:
        # app.py reads no setting at import, so it is imported once, whenever: the composition root, reset
        # to this stack's environment, builds what the handlers use on their first call. By name: mypy
        # checks devstack/, and app.py is not (yet) under it.
        bootstrap.reset()
        self.app_module = importlib.import_module("app")

    def _api_handler(self) -> Handler:
        found = self.handler("app")
        assert found is not None, "app.py defines no Chalice app"
        return found

    def _ws_handler(self, name: str) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            handler = self.handler(name) if self.app_module is not None else None
            if handler is None:
                return {"statusCode": 503}
            return handler(event, context)

        return invoke

    def _start_http(self) -> None:
        from devstack.http_gateway import HttpGateway

        assert self.app_module is not None
        self.http = HttpGateway(
            self.app_module.app,
            verifier().claims,
            port=self.http_port,
            static_dir=ROOT / "web",
            # The dev stage's page links to the e-mails the stack sent (GET /_dev/emails).
            web_config={"ws_url": self.ws_url, "dev_emails": "/_dev/emails"},
            pool=self.pool(API_HANDLER, self._api_handler()),
        )
        # Links in e-mails (unsubscribe, a drop) point at this gateway, known once it is bound.
        os.environ["LIVEDROP_PUBLIC_URL"] = self.env["LIVEDROP_PUBLIC_URL"] = self.http.url
        bootstrap.reset()
        self.http.start()

    def _start_pumps(self) -> None:
        settings = get_settings()
        # Lambda's event source mappings: one pump per stream or queue, running its function as its role.
        sources: tuple[topology.StreamSource | topology.QueueSource, ...] = (
            *topology.STREAM_SOURCES,
            *topology.QUEUE_SOURCES,
        )
        for source in sources:
            handler = self.handler(source.handler)
            if handler is None:
                self.unwired.append(source.handler)
                continue
            pump = self._source_pump(source, self.pool(source.handler, handler))
            self.pumps.append(iam.bind_pump(pump, source.handler))
        self.pumps.append(
            SchedulePump(
                self.aws.messaging_endpoint,
                settings.scheduler_group,
                self._schedule_target,
                poll_interval=SCHEDULE_LIST_SECONDS,
            )
        )
        sweeper = self.handler(Fn.SWEEPER)
        if sweeper is not None:
            self.pumps.append(PeriodicPump(self.pool(Fn.SWEEPER, sweeper), SWEEP_SECONDS, Fn.SWEEPER))
        # In AWS the admissions function runs a minute at a time, ticking inside; here a pump is the tick.
        admissions = self.handler(Fn.ADMISSIONS)
        if admissions is not None:
            tick = settings.admission_tick_seconds
            self.pumps.append(PeriodicPump(self.pool(Fn.ADMISSIONS, admissions), tick, Fn.ADMISSIONS, first_after=tick))
        for pump in self.pumps:
            pump.start()
        if self.unwired:
            log.warning("handlers not in app.py yet, not wired: %s", ", ".join(sorted(set(self.unwired))))

    def _source_pump(self, source: topology.StreamSource | topology.QueueSource, pool: FunctionPool) -> Pump:
        """The event source mapping of `source` (a table's stream or a queue) invoking `pool`."""
        settings = get_settings()
        if isinstance(source, topology.StreamSource):
            return StreamPump(
                self.aws.endpoint,
                settings.table_name(source.table),
                pool,
                batch_size=source.batch_size,
                batching_window_s=source.batching_window_s,
                # As infra deploys the mapping: a failed batch is retried in halves, then dropped.
                max_retries=topology.STREAM_MAX_RETRIES,
                bisect=True,
            )
        return QueuePump(
            self.aws.messaging_endpoint,
            settings.queue_url(source.queue),
            pool,
            batch_size=source.batch_size,
            batching_window_s=source.batching_window_s,
            # Batches at once: the mapping's MaximumConcurrency, within the function's concurrency.
            concurrency=min(source.max_concurrency, pool.concurrency),
        )

    def _schedule_target(self, arn: str) -> Handler:
        if self.iam is not None and not self.iam.may_schedule(arn):
            # In AWS the Scheduler's role could not invoke it: the schedule fails (and retries, then gives up).
            raise PermissionError(f"the Scheduler role may not invoke {arn}")
        prefix = get_settings().function_arn_prefix
        name = arn[len(prefix) :] if arn.startswith(prefix) else arn.rsplit(":", 1)[-1]
        handler = self.handler(name)
        if handler is None:
            raise LookupError(f"no handler for schedule target {arn}")
        return self.pool(name, handler)

    # --- IAM -------------------------------------------------------------------------------
    def enforce_iam(self) -> None:
        """Check every AWS call a function makes against its role as infra deploys it (chalicelib/functions.py).

        Run again after the embedded AWS is provisioned anew: its streams then have new ARNs."""
        enforcer = iam.local_enforcer(aws_client("dynamodb", self.aws.endpoint), ws_api_id=WS_API_ID, ws_stage=WS_STAGE)
        enforcer.record_usage = bool(os.environ.get("LIVEDROP_IAM_USAGE"))
        self.iam = iam.install(enforcer)


def _warm() -> None:
    current_code().module("chalicelib.wiring.bootstrap").warm()


def function_code() -> app_copies.AppCopy:
    """A function's copy of the app; its environments share it, so its Chalice app keeps the current
    request per thread, as the stack's own does (devstack.lambda_runtime.serve_concurrently), and its
    thread pools are kept per environment (pools_per_environment)."""
    code = app_copies.fresh_copy()
    serve_concurrently(code.module("app").app)
    pools_per_environment(code.module("chalicelib.core.threads"))
    return code


# Lambda's defaults, for a function chalicelib/schema/functions.py does not configure (CDK's Function: 3 s, 128 MB is
# Lambda's own default; Chalice deploys 60 s).
DEFAULT_TIMEOUT = 60
DEFAULT_MEMORY = 128
PAYMENT_LATENCY_ENV = "LIVEDROP_PAYMENT_LATENCY_MS"
# The sweeper's rate in AWS (Chalice's @app.schedule(Rate(1, MINUTES))).
SWEEP_SECONDS = 60.0
# How often the schedule group is listed for new schedules (Scheduler itself fires within a minute of a
# schedule's time): each listing reads every schedule of the group, and a test session leaves hundreds.
SCHEDULE_LIST_SECONDS = 1.0
# On stop, what the functions still run gets this long to finish before it is discarded (refused AWS from
# then on, as after a timeout): a schedule target waiting for its second would otherwise hold the stop.
POOL_STOP_SECONDS = 2.0
# The dev WebSocket gateway's API id, and the stage Chalice deploys the WebSocket API to: the
# @connections ARNs the functions' policies name.
WS_API_ID = "devws00001"
WS_STAGE = "api"
_WS_ROUTES = {"$connect": Fn.WS_CONNECT, "$disconnect": Fn.WS_DISCONNECT, "$default": Fn.WS_MESSAGE}
