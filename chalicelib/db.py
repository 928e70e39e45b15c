"""The data layer's shared pieces: ids, clock, and transactions whose cancellation reasons are
reported by the caller's own labels (PynamoDB reorders operations inside a transaction)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.config import get_settings
from chalicelib.errors import TryAgainError

CONFLICT_RETRIES = 5
_connection: Connection | None = None
_connection_lock = threading.Lock()


def now_ms() -> int:
    """The current time in epoch milliseconds (the storage convention)."""
    return int(time.time() * 1000)


def new_id(prefix: str) -> str:
    """A fresh opaque id such as `dr_5f0c…`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def connection() -> Connection:
    """The process-wide PynamoDB connection used for transactions."""
    global _connection
    if _connection is None:
        with _connection_lock:
            if _connection is None:
                settings = get_settings()
                _connection = Connection(
                    region=settings.region, host=settings.aws_endpoint_url, max_pool_connections=64
                )
    return _connection


class TransactionCancelledError(Exception):
    """A transaction whose conditions failed; `reasons` maps each label to its reason code."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}={v}" for k, v in reasons.items()))
        self.reasons = reasons

    def failed(self, label: str) -> bool:
        """Whether the operation called `label` failed its condition."""
        return self.reasons.get(label) == "ConditionalCheckFailed"


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

    def put(self, label: str, item: Model, condition: Condition | None = None) -> None:
        self._puts.append((label, (item, condition)))

    def update(self, label: str, item: Model, actions: list[Any], condition: Condition | None = None) -> None:
        self._updates.append((label, (item, actions, condition)))

    def commit(self, retries: int = CONFLICT_RETRIES) -> None:
        """Commit; retry TransactionConflict with jitter, then 503 try_again; raise
        TransactionCancelledError when a condition fails."""
        for attempt in range(retries + 1):
            try:
                self._commit_once()
                return
            except TransactWriteError as error:
                reasons = self._reasons(error)
                if not reasons:
                    raise
                codes = set(reasons.values())
                if "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes:
                    if attempt < retries:
                        time.sleep(random.uniform(0, 0.01 * 2**attempt))
                        continue
                    raise TryAgainError("the item is busy, try again", headers={"Retry-After": "1"}) from None
                raise TransactionCancelledError(reasons) from None

    def _commit_once(self) -> None:
        with TransactWrite(connection=connection()) as tx:
            for _, (model_cls, hash_key, range_key, condition) in self._checks:
                tx.condition_check(model_cls, hash_key, range_key, condition=condition)
            for _, (item, condition) in self._deletes:
                tx.delete(item, condition=condition)
            for _, (item, condition) in self._puts:
                tx.save(item, condition=condition)
            for _, (item, actions, condition) in self._updates:
                tx.update(item, actions, condition=condition)

    def _reasons(self, error: TransactWriteError) -> dict[str, str]:
        labels = [label for ops in (self._checks, self._deletes, self._puts, self._updates) for label, _ in ops]
        reasons = error.cancellation_reasons
        if not reasons:
            return {}
        return {label: (reason.code if reason else "None") for label, reason in zip(labels, reasons, strict=False)}
