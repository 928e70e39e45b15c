"""A push to a big audience, in slices: the first slice now, the rest queued for other invocations.

Live stock (chalicelib.delivery.live_stock) and drop events (chalicelib.delivery.notifications) push this
way, each with slices of its own size, on its own queue, in messages of its own shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.core import ports
from chalicelib.schema.messages import Queue, send_messages


def push_first_queue_rest(
    connection_ids: list[str],
    size: int,
    frame: dict[str, Any],
    occurred_at_ms: int | None,
    queue: Queue,
    message_of: Callable[[int, list[str]], dict[str, Any]],
) -> None:
    """Push `frame` to the first `size` connections now, and put the rest on `queue` first, one message a
    slice of `size` (`message_of(index, ids)`, indexes from 1), for other invocations to push meanwhile.

    The slices are queued before the push: if the push fails, the retry queues the same slices again."""
    rest = [
        message_of(index, connection_ids[at : at + size])
        for index, at in enumerate(range(size, len(connection_ids), size), start=1)
    ]
    if rest:
        send_messages(queue, rest)
    ports.pusher().push(connection_ids[:size], frame, occurred_at_ms)
