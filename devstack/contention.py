"""DynamoDB's contention and limits in the embedded DynamoDB, on by default.

moto serves one request at a time and never contends, so a design that only works when nothing else
touches its hot item passed every local test. The DynamoDB child of the embedded AWS therefore models,
as AWS does:

- **transaction conflicts**: a TransactWriteItems that commits holds its items from its start until a
  short while after it (`hold_ms`, 2 ms by default: the commit phase of a real transaction); another
  transaction on one of them that reached DynamoDB within that window (it waited for the embedded
  DynamoDB's lock while the first ran, as it would run concurrently in AWS) is cancelled with
  TransactionCanceledException, the reason `TransactionConflict` on that item and `None` on the
  others, and writes nothing;
- **a bounded write rate per item**: AWS gives one partition (so one hot item) about 1,000 write units
  a second; the dev stack, far slower than AWS, gives `item_wcu` (200 by default, a fifth of AWS's)
  with bursts of up to 2 s of it. A write costs 1 unit per KB of the larger of the item before and
  after it (at least 1), 2 per KB inside a transaction. Past the rate a single write is refused with
  ProvisionedThroughputExceededException, a transaction is cancelled with `ThrottlingError` on the
  hot item; a refused write changes nothing.

The plan comes from `--contention` on `python -m devstack` or LIVEDROP_CONTENTION, e.g.
`hold_ms=5,item_wcu=100`; `off` turns both off (`hold_ms=0` or `item_wcu=0` turns off one).
`TransactionRules` (4 MB per transaction, ClientRequestToken) and the no-op stream rule always hold.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

ENV_VAR = "LIVEDROP_CONTENTION"
CLI_HELP = (
    "DynamoDB contention: hold_ms=2 (a transaction's hold on its items), item_wcu=200 (write units a "
    "second one item takes; AWS: 1000); `off` for none (default: $LIVEDROP_CONTENTION, else on)"
)
DEFAULT_HOLD_MS = 2.0
DEFAULT_ITEM_WCU = 200.0  # a fifth of AWS's 1,000 per partition, so a dev stack's rush reaches it
BURST_SECONDS = 2.0
KB = 1024

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class ContentionPlan:
    hold_ms: float = DEFAULT_HOLD_MS
    item_wcu: float = DEFAULT_ITEM_WCU

    def describe(self) -> str:
        """The plan as the spec that builds it, or `off`."""
        if not self.hold_ms and not self.item_wcu:
            return "off"
        return f"hold_ms={self.hold_ms:g},item_wcu={self.item_wcu:g}"


def parse(spec: str | None) -> ContentionPlan:
    """A plan from `hold_ms=N,item_wcu=N` (unnamed values keep their default); `off` is neither,
    empty is the default; ValueError for anything else."""
    text = (spec or "").strip()
    if not text:
        return ContentionPlan()
    if text.lower() in ("off", "0", "none"):
        return ContentionPlan(0.0, 0.0)
    values: dict[str, float] = {}
    for part in text.split(","):
        name, sep, raw = (piece.strip() for piece in part.partition("="))
        if not sep or name not in ("hold_ms", "item_wcu"):
            raise ValueError(f"contention spec part {part.strip()!r} is not hold_ms=N or item_wcu=N")
        value = float(raw)
        if not 0 <= value < math.inf:
            raise ValueError(f"{name}={raw} is not a number from 0 up")
        values[name] = value
    return ContentionPlan(**values)


def configure(spec: str | None, fail: Callable[[str], Any]) -> ContentionPlan:
    """The plan of `--contention SPEC` (else LIVEDROP_CONTENTION), written back to LIVEDROP_CONTENTION
    for the embedded AWS the stack starts; `fail` is called with the message of a spec that does not parse."""
    try:
        plan = parse(spec if spec is not None else os.environ.get(ENV_VAR))
    except ValueError as error:
        fail(f"--contention: {error}")
        raise
    os.environ[ENV_VAR] = plan.describe()
    return plan


class ItemGate:
    """Which items a transaction holds, and each item's write units left (a token bucket per item).

    Used under the embedded DynamoDB's serialization lock; its own lock only guards the bookkeeping.
    """

    def __init__(self, plan: ContentionPlan, clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self._clock = clock
        self._held: dict[Hashable, tuple[float, float]] = {}  # item -> (from, until)
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # item -> (units, when)
        self._lock = threading.Lock()

    def busy(self, item: Hashable, arrived: float) -> bool:
        """Whether a transaction that reached DynamoDB at `arrived` overlaps one that committed on `item`:
        it arrived while that one ran or held the item (one that waited for the lock before that one
        started is simply served after it)."""
        window = self._held.get(item)
        return window is not None and window[0] <= arrived < window[1]

    def hold(self, items: Iterable[Hashable], started: float) -> None:
        """`items` are held by a transaction that started at `started` and just committed, for the plan's hold."""
        if not self.plan.hold_ms:
            return
        now = self._clock()
        with self._lock:
            if len(self._held) > 10_000:
                self._held = {k: v for k, v in self._held.items() if v[1] > now}
            for item in items:
                self._held[item] = (started, now + self.plan.hold_ms / 1000)

    def _level(self, item: Hashable, now: float) -> float:
        rate = self.plan.item_wcu
        units, when = self._buckets.get(item, (rate * BURST_SECONDS, now))
        return min(rate * BURST_SECONDS, units + (now - when) * rate)

    def throttled(self, item: Hashable) -> bool:
        """Whether `item` has spent its write units (a write may overdraw them, then waits them back)."""
        if not self.plan.item_wcu:
            return False
        return self._level(item, self._clock()) < 1

    def spend(self, item: Hashable, units: float) -> None:
        """`item` took a write of `units` write units."""
        if not self.plan.item_wcu:
            return
        now = self._clock()
        with self._lock:
            if len(self._buckets) > 50_000:
                full = self.plan.item_wcu * BURST_SECONDS
                self._buckets = {k: v for k, v in self._buckets.items() if self._level(k, now) < full}
            self._buckets[item] = (self._level(item, now) - units, now)


def write_units(before: Any, after: Any, transactional: bool = False) -> int:
    """The write units a write costs: 1 per KB of the larger of the moto Items before and after (at
    least 1), twice that in a transaction."""
    size = max((item.size() for item in (before, after) if item is not None), default=0)
    return max(1, math.ceil(size / KB)) * (2 if transactional else 1)


# --- TransactWriteItems: 4 MB and ClientRequestToken ----------------------------------------------------
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
TOKEN_SECONDS = 600
MAX_TOKENS = 200_000  # a bound on the tokens remembered (about 50 MB at most)
_PREFIX = "com.amazonaws.dynamodb.v20120810#"


def attribute_size(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (strings and binaries by bytes, numbers by digits)."""
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        return len(str(content).lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return math.ceil(len(str(content)) * 3 / 4)
    if kind in ("SS", "NS", "BS"):
        inner = kind[0]
        return sum(attribute_size({inner: element}) for element in content)
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in content.items())
    return 1  # BOOL, NULL


def transaction_size(transact_items: list[dict[str, Any]]) -> int:
    """The aggregate size of a TransactWriteItems' items: what it writes and the values it names."""
    total = 0
    for entry in transact_items:
        for op in entry.values():
            if not isinstance(op, dict):
                continue
            for part in ("Item", "Key", "ExpressionAttributeValues"):
                attributes = op.get(part) or {}
                if isinstance(attributes, dict):
                    total += sum(len(k.encode()) + attribute_size(v) for k, v in attributes.items() if v)
    return total


class TransactionRules:
    """WSGI middleware inside the serialization lock: TransactWriteItems over 4 MB is refused
    (ValidationException), and a ClientRequestToken makes one idempotent for 10 minutes: the same token
    with the same parameters answers the first success again without writing; with other parameters,
    IdempotentParameterMismatchException."""

    def __init__(self, app: WsgiApp, clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._clock = clock
        self._tokens: dict[str, tuple[bytes, float]] = {}  # token -> (parameters' digest, expiry)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") != "DynamoDB_20120810.TransactWriteItems":
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body)
            items = request["TransactItems"]
        except (ValueError, KeyError, TypeError):
            return self._app(environ, start_response)
        if transaction_size(items) > MAX_TRANSACTION_BYTES:
            return _error(start_response, "ValidationException", "Transaction request cannot be larger than 4 MB")
        token = request.pop("ClientRequestToken", None)
        if not isinstance(token, str):
            return self._app(environ, start_response)
        now = self._clock()
        # Tokens are kept in the order they were first answered, so the expired ones are the oldest.
        while self._tokens and (next(iter(self._tokens.values()))[1] <= now or len(self._tokens) > MAX_TOKENS):
            del self._tokens[next(iter(self._tokens))]
        digest = hashlib.blake2b(json.dumps(request, sort_keys=True).encode(), digest_size=16).digest()
        known = self._tokens.get(token)
        if known is not None:
            if known[0] != digest:
                message = "Request parameters do not match the parameters of the earlier request with this token"
                return _error(start_response, "IdempotentParameterMismatchException", message)
            # The first call succeeded; the repeat succeeds without writing (botocore sends a token with every call).
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", "2")])
            return [b"{}"]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info)

        answer = b"".join(self._app(environ, capture))
        if str(captured.get("status", "")).startswith("200"):
            self._tokens[token] = (digest, now + TOKEN_SECONDS)
        return [answer]


def _error(start_response: Callable[..., Any], code: str, message: str) -> list[bytes]:
    body = json.dumps({"__type": _PREFIX + code, "message": message}).encode()
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)]
    start_response("400 Bad Request", [*headers, ("Content-Length", str(len(body)))])
    return [body]
