"""Fault injection for the dev stack: the bad luck AWS has and moto never shows.

moto answers every request, at once, with no contention, so the app's retry paths (transaction
conflicts, throttling, 5xx, lost pushes) would never run locally. With a fault plan, a given share
of requests fails the way AWS fails them:

- `conflict`: TransactWriteItems is cancelled with a `TransactionConflict` reason on one of its items
  (TransactionCanceledException, as DynamoDB answers when another transaction holds an item);
- `throttle`: ProvisionedThroughputExceededException from DynamoDB, the service's throttling error
  elsewhere (ThrottlingException, TooManyRequestsException, Throttling);
- `error`: a 500 InternalServerError from the service;
- `drop_post`: an `@connections` post is acknowledged but its frame never reaches the socket.

Only the calls the app makes at run time can fail (DATA_PLANE: item reads and writes, publishing,
sending, sign-up and sign-in, schedules); creating tables, queues and pools, and what the dev stack's
pumps do in place of Lambda's event source mappings, never fail. Every fault is decided before the
request reaches moto, so a failed request changed nothing, as with AWS's throttling and conflicts.
The plan comes from `--faults` on `python -m devstack` or the LIVEDROP_FAULTS environment variable, e.g.
`conflict=0.2,throttle=0.2,error=0.02,drop_post=0.1,seed=7`; it is off by default.

Hooks: `wrap(app)` around the WSGI app of any process that serves the embedded AWS, and
`drops_post()` in the `@connections` POST handler.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import random
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

ENV_VAR = "LIVEDROP_FAULTS"
KINDS = ("conflict", "throttle", "error", "drop_post")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class FaultPlan:
    """The share (0..1) of eligible requests that fail, per kind of fault."""

    conflict: float = 0.0
    throttle: float = 0.0
    error: float = 0.0
    drop_post: float = 0.0
    seed: int | None = None

    @property
    def active(self) -> bool:
        return any(getattr(self, kind) > 0 for kind in KINDS)

    def describe(self) -> str:
        """The plan as the spec that builds it (`conflict=0.2,throttle=0.2`), or `off`."""
        parts = [f"{kind}={getattr(self, kind):g}" for kind in KINDS if getattr(self, kind) > 0]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return ",".join(parts) if parts else "off"


def parse(spec: str | None) -> FaultPlan:
    """A FaultPlan from `kind=rate,...` (rates 0..1 or percentages such as `20%`; `seed=N` for a
    repeatable run); ValueError for anything else. An empty spec, `0` or `off` is no faults."""
    text = (spec or "").strip()
    if text.lower() in ("", "0", "off", "none"):
        return FaultPlan()
    values: dict[str, Any] = {}
    for part in text.split(","):
        name, sep, raw = part.strip().partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not raw:
            raise ValueError(f"fault spec part {part.strip()!r} is not name=value")
        if name == "seed":
            values["seed"] = int(raw)
            continue
        if name not in KINDS:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(KINDS)}, seed)")
        rate = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {raw!r} of {name} is not between 0 and 1 (or 0% and 100%)")
        values[name] = rate
    return FaultPlan(**values)


CLI_HELP = "inject AWS faults, e.g. conflict=0.2,throttle=0.2,error=0.02 (default: $LIVEDROP_FAULTS, else off)"


def configure(spec: str | None, fail: Callable[[str], Any]) -> FaultPlan:
    """The plan of `--faults SPEC` (else LIVEDROP_FAULTS), written back to LIVEDROP_FAULTS for the
    processes the stack starts; `fail` is called with the message of a spec that does not parse."""
    try:
        plan = parse(spec) if spec is not None else plan_from_env()
    except ValueError as error:
        fail(f"--faults: {error}")
        raise
    os.environ[ENV_VAR] = plan.describe()
    return plan


def plan_from_env(env: dict[str, str] | os._Environ[str] | None = None) -> FaultPlan:
    """The plan LIVEDROP_FAULTS describes (no faults when unset)."""
    return parse((os.environ if env is None else env).get(ENV_VAR))


class _Dice:
    """One random source per process (seeded from the plan) and counts of what was injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - chaos, not cryptography
        self._seeded: int | None = None
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.reporting = False  # whether the summary is printed at exit

    def roll(self, plan: FaultPlan, kind: str) -> bool:
        rate = getattr(plan, kind)
        with self._lock:
            if plan.seed is not None and self._seeded != plan.seed:
                self._random.seed(plan.seed)
                self._seeded = plan.seed
            hit = rate > 0 and self._random.random() < rate
            if hit:
                self.injected[kind] += 1
            return hit

    def pick(self, count: int) -> int:
        with self._lock:
            return self._random.randrange(count)

    def summary(self, label: str) -> str:
        kinds = ", ".join(f"{kind} {self.injected[kind]}" for kind in KINDS if self.injected[kind])
        failed = sum(self.injected.values())
        return f"fault injection ({label}): {failed} of {self.requests} requests failed on purpose ({kinds or 'none'})"


_dice = _Dice()


# --- the embedded AWS ------------------------------------------------------------------------------
def wrap(app: WsgiApp, plan: FaultPlan | None = None, label: str = "embedded AWS") -> WsgiApp:
    """`app` with the plan's faults injected (`app` itself when the plan has none). The one hook a
    process serving the embedded AWS applies; at exit it prints a one-line summary of what it
    injected, naming the process (`label`: the services it serves), since each process has its own dice."""
    chosen = plan_from_env() if plan is None else plan
    if not (chosen.conflict or chosen.throttle or chosen.error):
        return app
    if not _dice.reporting:
        _dice.reporting = True
        atexit.register(lambda: print(_dice.summary(label), file=sys.stderr, flush=True))
    return _FaultyApp(app, chosen)


class _FaultyApp:
    def __init__(self, app: WsgiApp, plan: FaultPlan) -> None:
        self._app = app
        self._plan = plan

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        call = _AwsCall.of(environ)
        if call is None or call.operation not in DATA_PLANE.get(call.service, ()):
            return self._app(environ, start_response)
        with _dice._lock:
            _dice.requests += 1
        if call.operation == "TransactWriteItems" and _dice.roll(self._plan, "conflict"):
            items = _transact_item_count(environ)
            if items:
                return _respond(start_response, *call.conflict(items, _dice.pick(items)))
        if _dice.roll(self._plan, "throttle"):
            return _respond(start_response, *call.throttled())
        if _dice.roll(self._plan, "error"):
            return _respond(start_response, *call.internal_error())
        return self._app(environ, start_response)


@dataclass(frozen=True)
class _AwsCall:
    """Which service and operation a request is, and its protocol (for the error's wire format)."""

    service: str
    operation: str
    protocol: str  # "json" (X-Amz-Target), "rest-json" or "query"
    json_prefix: str = ""

    @classmethod
    def of(cls, environ: dict[str, Any]) -> _AwsCall | None:
        """The call a request makes, or None for what is no AWS API call (a JWKS document)."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            prefix, _, operation = target.partition(".")
            service = _TARGET_SERVICES.get(prefix, prefix.lower())
            return cls(service, operation, "json", _JSON_TYPE_PREFIX.get(service, ""))
        scope = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2].split(",")[0].split("/")
        if len(scope) < 4:
            return None
        service = scope[3]
        if service in _QUERY_SERVICES:
            return cls(service, _form_action(environ), "query")
        # REST services name the operation by method and path; only schedules matter here.
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        operation = f"{method} /schedules" if path.startswith("/schedules/") else f"{method} {path}"
        return cls(service, operation, "rest-json")

    def _error(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> Any:
        request_id = str(uuid.uuid4())
        if self.protocol == "query":
            kind = "Receiver" if status >= 500 else "Sender"
            body = (
                f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
        payload: dict[str, Any] = (
            {"Message": message}
            if self.protocol == "rest-json"
            else {"__type": self.json_prefix + code, "message": message, **(extra or {})}
        )
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
        return status, headers, json.dumps(payload).encode()

    def conflict(self, items: int, busy: int) -> Any:
        reasons = [{"Code": "None"} for _ in range(items)]
        reasons[busy] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        codes = ", ".join(reason["Code"] for reason in reasons)
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
        return self._error(400, "TransactionCanceledException", message, {"CancellationReasons": reasons})

    def throttled(self) -> Any:
        if self.service == "dynamodb":
            message = "The level of configured provisioned throughput for the table was exceeded."
            return self._error(400, "ProvisionedThroughputExceededException", message)
        code = _THROTTLING_CODES.get(self.service, "ThrottlingException")
        return self._error(429 if self.protocol == "rest-json" else 400, code, "Rate exceeded")

    def internal_error(self) -> Any:
        code = _INTERNAL_ERROR_CODES.get(self.service, "InternalServerError")
        return self._error(500, code, "Internal server error")


# The calls the app itself makes while it runs; nothing else is ever failed on purpose.
DATA_PLANE: dict[str, frozenset[str]] = {
    "dynamodb": frozenset(
        {
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "Query",
            "Scan",
            "BatchGetItem",
            "BatchWriteItem",
            "TransactWriteItems",
            "TransactGetItems",
        }
    ),
    "sqs": frozenset({"SendMessage", "SendMessageBatch"}),
    "sns": frozenset({"Publish", "PublishBatch"}),
    "cognito-idp": frozenset(
        {"SignUp", "ConfirmSignUp", "InitiateAuth", "AdminConfirmSignUp", "AdminGetUser", "AdminDeleteUser"}
    ),
    "scheduler": frozenset({"POST /schedules", "DELETE /schedules"}),  # CreateSchedule, DeleteSchedule
}
_TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "AmazonSQS": "sqs",
}
_JSON_TYPE_PREFIX = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810#",
    "dynamodbstreams": "com.amazonaws.dynamodb.v20120810#",
}
_QUERY_SERVICES = {"sns", "sts", "iam"}
_THROTTLING_CODES = {"cognito-idp": "TooManyRequestsException", "sns": "Throttling", "sqs": "ThrottlingException"}
_INTERNAL_ERROR_CODES = {"cognito-idp": "InternalErrorException", "sns": "InternalError", "sqs": "InternalError"}


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for moto to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


def _form_action(environ: dict[str, Any]) -> str:
    """The Action of a query-protocol request (SNS): in the query string or the form body."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    return parse_qs(_body(environ).decode("utf-8", "replace")).get("Action", [""])[0]


def _transact_item_count(environ: dict[str, Any]) -> int:
    """How many items a TransactWriteItems request holds."""
    try:
        return len(json.loads(_body(environ)).get("TransactItems") or [])
    except (ValueError, AttributeError):
        return 0


def _respond(
    start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], body: bytes
) -> list[bytes]:
    phrase = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error"}[status]
    start_response(f"{status} {phrase}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


# --- @connections -----------------------------------------------------------------------------------
_post_plan: tuple[str | None, FaultPlan] = (None, FaultPlan())


def drops_post() -> bool:
    """Whether this `@connections` post is lost (acknowledged, never delivered) under LIVEDROP_FAULTS."""
    global _post_plan
    spec = os.environ.get(ENV_VAR)
    if spec != _post_plan[0]:
        _post_plan = (spec, parse(spec))
    return _dice.roll(_post_plan[1], "drop_post")
