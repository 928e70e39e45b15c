"""The per-user rate limits on ratelimits itself: a counter per user and window, a refusal past the
limit that the edge answers with 429 and Retry-After."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.core.config import get_settings
from chalicelib.core.errors import LiveDropError
from chalicelib.domain import ratelimits
from chalicelib.edge.web import error_response
from chalicelib.schema.db import now_ms


def test_rate_limit_counters_are_per_user_and_window() -> None:
    now = ratelimits.window_of(now_ms())[1]  # the next window's start: a window nobody has used
    first, _, _ = ratelimits.counter(ratelimits.ORDERS, "u1", now)
    other, _, _ = ratelimits.counter(ratelimits.ORDERS, "u2", now)
    later, _, _ = ratelimits.counter(ratelimits.ORDERS, "u1", now + get_settings().rate_window_seconds * 1000)
    assert len({first.limit_key, other.limit_key, later.limit_key}) == 3
    user = f"u_{uuid.uuid4().hex}"
    for _ in range(get_settings().join_rate_limit):
        ratelimits.take(ratelimits.JOINS, user, now)
    with pytest.raises(LiveDropError) as refused:
        ratelimits.take(ratelimits.JOINS, user, now + 500)
    answer = error_response(refused.value)  # the edge decides the status and headers of a domain error
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "10"
