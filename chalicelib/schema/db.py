"""The data layer's shared pieces: ids, clock, and transactions whose cancellation reasons are
reported by the caller's own labels (PynamoDB reorders operations inside a transaction)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, ReadTimeoutError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.core import aws, ports
from chalicelib.core.errors import TryAgainError
from chalicelib.core.observability import count
from chalicelib.core.threads import SharedPool, in_context

CONFLICT_RETRIES = 5
# Cancellation reasons that say "busy", not "refused": the same transaction may simply be tried again.
TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
# Error codes AWS services use for throttling (botocore retries these before the app sees them).
THROTTLING_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionInProgressException",
}


def now_ms() -> int:
    """The current time in epoch milliseconds (the storage convention)."""
    return int(time.time() * 1000)


def new_id(prefix: str) -> str:
    """A fresh opaque id such as `dr_5f0c…`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def connection() -> Connection:
    """The process-wide PynamoDB connection used for transactions (the composition root's)."""
    return ports.dynamodb()


def _return_values(return_old: bool) -> str | None:
    # ALL_OLD on a failed condition lets the caller explain the failure without a second read.
    return "ALL_OLD" if return_old else None


class TransactionCancelledError(Exception):
    """A transaction whose conditions failed; `reasons` maps each label to its reason code."""

    def __init__(self, reasons: dict[str, str], old_items: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(", ".join(f"{k}={v}" for k, v in reasons.items()))
        self.reasons = reasons
        self.old_items = old_items or {}

    def failed(self, label: str) -> bool:
        """Whether the operation called `label` failed its condition."""
        return self.reasons.get(label) == "ConditionalCheckFailed"

    def old_item(self, label: str) -> dict[str, Any] | None:
        """The raw item `label` failed on, as it was (only for operations made with return_old=True)."""
        return self.old_items.get(label)


@dataclass
class Transaction:
    """One TransactWriteItems, built with labelled operations."""

    _checks: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    _deletes: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    _puts: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    _updates: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def check(self, label: str, model_cls: type[Model], hash_key: Any, range_key: Any, condition: Condition) -> None:
        self._checks.append((label, (model_cls, hash_key, range_key, condition)))

    def delete(self, label: str, item: Model, condition: Condition | None = None) -> None:
        self._deletes.append((label, (item, condition)))

    def put(self, label: str, item: Model, condition: Condition | None = None, return_old: bool = False) -> None:
        self._puts.append((label, (item, condition, _return_values(return_old))))

    def update(
        self,
        label: str,
        item: Model,
        actions: list[Any],
        condition: Condition | None = None,
        return_old: bool = False,
    ) -> None:
        self._updates.append((label, (item, actions, condition, _return_values(return_old))))

    def commit(self, retries: int = CONFLICT_RETRIES) -> None:
        """Commit; retry TransactionConflict with jitter, then TryAgainError; raise
        TransactionCancelledError when a condition fails."""
        for attempt in range(retries + 1):
            try:
                self._commit_once()
                return
            except TransactWriteError as error:
                reasons = self._reasons(error)
                if not reasons:
                    raise
                codes = set(reasons.values()) - {"None"}
                if codes and codes <= TRANSIENT_REASONS:
                    if attempt < retries:
                        count("ContentionRetries")
                        time.sleep(random.uniform(0, 0.01 * 2**attempt))
                        continue
                    raise TryAgainError("the item is busy, try again") from None
                raise TransactionCancelledError(reasons, self._old_items(error)) from None

    def _commit_once(self) -> None:
        with TransactWrite(connection=connection()) as tx:
            for _, (model_cls, hash_key, range_key, condition) in self._checks:
                tx.condition_check(model_cls, hash_key, range_key, condition=condition)
            for _, (item, condition) in self._deletes:
                tx.delete(item, condition=condition)
            for _, (item, condition, return_values) in self._puts:
                tx.save(item, condition=condition, return_values=return_values)
            for _, (item, actions, condition, return_values) in self._updates:
                tx.update(item, actions, condition=condition, return_values=return_values)

    def _labels(self) -> list[str]:
        return [label for ops in (self._checks, self._deletes, self._puts, self._updates) for label, _ in ops]

    def _old_items(self, error: TransactWriteError) -> dict[str, dict[str, Any]]:
        reasons = error.cancellation_reasons or []
        return {
            label: reason.raw_item
            for label, reason in zip(self._labels(), reasons, strict=False)
            if reason is not None and reason.raw_item
        }

    def _reasons(self, error: TransactWriteError) -> dict[str, str]:
        labels = self._labels()
        reasons = error.cancellation_reasons
        if not reasons:
            return {}
        return {label: (reason.code if reason else "None") for label, reason in zip(labels, reasons, strict=False)}


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what caused it, in turn (PynamoDB's cause, then Python's chain), each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, PynamoDBException) and current.cause is not None:
            current = current.cause
        else:
            current = current.__cause__ or current.__context__


def is_unreachable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a backend that did not answer in time or could not be
    reached at all (after the SDK's retries), rather than one that answered busy."""
    return any(isinstance(cause, ConnectionError | ReadTimeoutError) for cause in _causes(error))


def is_transient(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is AWS being busy or unreachable rather than refusing the
    request: throttling, a 5xx, a lost connection. Such a request may be sent again later."""
    for cause in _causes(error):
        if isinstance(cause, ClientError):
            details = cause.response.get("Error", {})
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if details.get("Code") in THROTTLING_CODES or int(status) >= 500:
                return True
        if isinstance(cause, ConnectionError | HTTPClientError):
            return True
    return False


BATCH_GET_KEYS = 100  # BatchGetItem's limit per call, all tables together
BATCH_GET_PARALLEL = 8
_BATCH_GET_TRIES = 5
_readers = SharedPool(BATCH_GET_PARALLEL, "batch-get")


def batch_get(
    wanted: dict[type[Model], list[dict[str, str]]], attributes: dict[type[Model], list[str]]
) -> dict[type[Model], list[dict[str, Any]]]:
    """The items of several tables' keys (string keys only), each with only `attributes`, in as few
    BatchGetItem calls as DynamoDB allows: one per BATCH_GET_KEYS keys whatever the tables, up to
    BATCH_GET_PARALLEL of them at once. Unprocessed keys are asked again (a few times); an item that does
    not exist is simply absent from the answer."""
    by_table = {model.Meta.table_name: model for model in wanted}
    keys = [(model.Meta.table_name, key) for model, model_keys in wanted.items() for key in model_keys]
    requests: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request: dict[str, Any] = {}
        for table, key in keys[start : start + BATCH_GET_KEYS]:
            names = attributes[by_table[table]]
            entry = request.setdefault(
                table,
                {
                    "Keys": [],
                    "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(names))),
                    "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(names)},
                },
            )
            entry["Keys"].append({name: {"S": value} for name, value in key.items()})
        requests.append(request)
    # A big read (a creator's online followers) waits for its slowest call rather than for all in turn.
    answers = (
        _readers.get().map(in_context(_batch_get_all), requests) if len(requests) > 1 else map(_batch_get_all, requests)
    )
    found: dict[type[Model], list[dict[str, Any]]] = {model: [] for model in wanted}
    for answer in answers:
        for table, items in answer.items():
            found[by_table[table]].extend({k: _plain(v) for k, v in item.items()} for item in items)
    return found


def _batch_get_all(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One BatchGetItem of at most BATCH_GET_KEYS keys, asked again for what DynamoDB left unprocessed."""
    client = aws.client("dynamodb")
    found: dict[str, list[dict[str, Any]]] = {}
    for attempt in range(_BATCH_GET_TRIES):
        answer = client.batch_get_item(RequestItems=request)
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(min(0.05 * 2**attempt, 0.5) * random.random())
    raise TryAgainError("DynamoDB left keys unread; try again")


def _plain(value: dict[str, Any]) -> Any:
    """A low-level attribute value of the kinds batch_get reads (strings, numbers, string sets) as Python."""
    if "S" in value:
        return value["S"]
    if "N" in value:
        return int(value["N"]) if value["N"].lstrip("-").isdigit() else float(value["N"])
    if "SS" in value:
        return set(value["SS"])
    return None
