"""Per-user rate limits: a fixed-window counter item per user, kind and window, gone with its TTL.

Why DynamoDB and not an in-process token bucket: every Lambda execution environment would keep its own
bucket, so a user spread over N environments would get N times the limit. Why no hot item: the key is
the user's own (`kind#user#window`), so a thousand users write a thousand different items. Orders count
inside the order's own transaction (no extra call on the hot path); joins and entries with one
conditional UpdateItem before the work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.core.config import get_settings
from chalicelib.core.errors import RateLimitedError
from chalicelib.core.observability import count
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import RateLimit

ORDERS = "orders"
JOINS = "joins"  # queue joins and draw entries share one budget


def limit_of(kind: str) -> int:
    settings = get_settings()
    return settings.order_rate_limit if kind == ORDERS else settings.join_rate_limit


def window_of(at_ms: int) -> tuple[int, int]:
    """The window `at_ms` falls in: its start and end in epoch milliseconds."""
    size = get_settings().rate_window_seconds * 1000
    start = at_ms - at_ms % size
    return start, start + size


def counter(kind: str, user_id: str, at_ms: int) -> tuple[RateLimit, list[Any], Condition]:
    """The counter item of this window, the actions that count one more request, and the condition
    that the limit is not reached yet (for a caller's own transaction)."""
    start, end = window_of(at_ms)
    item = RateLimit(limit_key=f"{kind}#{user_id}#{start}")
    # Kept a window past its end: DynamoDB's TTL deletes late, and the key already moved on by then.
    expires = datetime.fromtimestamp(end // 1000 + get_settings().rate_window_seconds, UTC)
    actions = [RateLimit.hits.add(1), RateLimit.ttl.set(expires)]
    condition = RateLimit.limit_key.does_not_exist() | (RateLimit.hits < limit_of(kind))
    return item, actions, condition


def limited(kind: str, at_ms: int) -> RateLimitedError:
    """The error of a request over its limit, retry_after the seconds until the window ends."""
    _, end = window_of(at_ms)
    retry_after = max(1, -(-(end - at_ms) // 1000))
    count(f"RateLimited_{kind}")
    return RateLimitedError(
        f"at most {limit_of(kind)} requests of this kind per {get_settings().rate_window_seconds} s",
        retry_after=retry_after,
    )


def take(kind: str, user_id: str, at_ms: int | None = None) -> None:
    """Count one request of `user_id`, or raise RateLimitedError when this window's budget is spent."""
    now = now_ms() if at_ms is None else at_ms
    item, actions, condition = counter(kind, user_id, now)
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise limited(kind, now) from None
        raise
