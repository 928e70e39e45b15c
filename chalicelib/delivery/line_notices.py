"""What a line tells its people: a notice per user, kind and place (queue_position, admitted, draw_won,
draw_lost), pushed to their open connections. Every notice's event id is derived from the drop, the user,
the kind and the position (never the clock), and its time from the line, so a notice sent twice is the
same frame and the same inbox row."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.core import ports
from chalicelib.core.observability import count
from chalicelib.core.threads import in_context
from chalicelib.domain import connections
from chalicelib.schema.messages import Envelope, FrameType

log = logging.getLogger("livedrop.serving")
_NAMESPACE = uuid.UUID("0b7d3c52-2f3e-4a43-8d0e-1f5a9c3e6b21")
# Users told at once.
TELLERS = 8


def event_id_of(drop_id: str, user_id: str, kind: str, position: int) -> str:
    """A line notice's event id: the same for every retry, never two for one user, kind and place."""
    return str(uuid.uuid5(_NAMESPACE, f"{drop_id}/{user_id}/{kind}/{position}"))


def notice(
    drop_id: str, user_id: str, kind: FrameType, position: int, at_ms: int, data: dict[str, Any] | None = None
) -> Envelope:
    body = {"drop_id": drop_id, "position": position, **(data or {})}
    return Envelope.new(event_id_of(drop_id, user_id, kind, position), kind, at_ms, body)


def inbox_copy(notice: Envelope) -> Envelope:
    """The inbox keeps the drop alone: never the position, never an admission token."""
    return Envelope.new(notice.event_id, notice.event_type, notice.occurred_at_ms, {"drop_id": notice.data["drop_id"]})


def tell_all(drop_id: str, kind: FrameType, told: list[tuple[str, int]], at_ms: int) -> None:
    push_all([(notice(drop_id, user, kind, position, at_ms), user) for user, position in told])


def push_all(notices: list[tuple[Envelope, str]]) -> None:
    """Push each notice to its user's open connections, several users at once. The connections are those
    their quota rows name, read together (one BatchGetItem per 100 users); if that read fails, each
    user's are looked up on their own."""
    sockets = _sockets_of(sorted({user_id for _, user_id in notices}))

    def push(item: tuple[Envelope, str]) -> None:
        notice, user_id = item
        # The frame carries all of the notice: the position and, once admitted, the token.
        frame = notice.frame(fields=None)
        guarded(
            lambda: ports.pusher().push(
                connections.connections_of(user_id) if sockets is None else sockets.get(user_id, []),
                frame,
                notice.occurred_at_ms,
            ),
            user_id,
            notice.event_type,
        )

    online = notices if sockets is None else [item for item in notices if sockets.get(item[1])]
    if len(online) <= 1:
        for item in online:
            push(item)
        return
    with ThreadPoolExecutor(max_workers=TELLERS) as pool:
        list(pool.map(in_context(push), online))


def _sockets_of(user_ids: list[str]) -> dict[str, list[str]] | None:
    if len(user_ids) <= 1:
        return None  # one user: their own lookup is the one call anyway
    try:
        return connections.held_connections(user_ids)
    except Exception:
        log.exception("could not read the open connections of %d users", len(user_ids))
        return None


def guarded(work: Any, user_id: str, kind: str) -> None:
    try:
        work()
    except Exception:
        # The user can always read their place (GET .../me); a lost push must not stop the line.
        log.exception("could not tell %s of %s", user_id, kind)
        count("LineNoticeFailures")
