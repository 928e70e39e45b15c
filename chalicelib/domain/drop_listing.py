"""Listing drops by their derived status: the by_status index read one stored status at a time and
merged by start time, with page tokens that never list a drop twice."""

from __future__ import annotations

from typing import Any

from chalicelib.core.errors import InvalidPageError, InvalidRequestError
from chalicelib.core.statuses import DropStatus
from chalicelib.domain.catalog import derived_status, drop_view, with_hot_fields
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop
from chalicelib.schema.pagination import check_key, decode_token, encode_token, page_body, render_each

_DROP_KEY = {"drop_id": "S", "status": "S", "start_time": "N"}


def _drop_sources(status: DropStatus | None, now: int) -> Any:
    """For a listing by derived status: each stored status a matching drop may still carry (the
    stored one lags the clock by the scheduler's delay), with a key condition and a filter."""
    if status is None:
        return {stored: (None, None) for stored in DropStatus}
    started = Drop.start_time <= now
    not_ended = Drop.end_time > now
    return {
        DropStatus.SCHEDULED: {DropStatus.SCHEDULED: (Drop.start_time > now, None)},
        DropStatus.LIVE: {
            DropStatus.SCHEDULED: (started, not_ended),
            DropStatus.LIVE: (None, not_ended),
            DropStatus.SOLD_OUT: (None, not_ended),
        },
        DropStatus.SOLD_OUT: {DropStatus.LIVE: (None, not_ended), DropStatus.SOLD_OUT: (None, not_ended)},
        DropStatus.ENDED: {
            DropStatus.ENDED: (None, None),
            DropStatus.SCHEDULED: (None, Drop.end_time <= now),
            DropStatus.LIVE: (None, Drop.end_time <= now),
            DropStatus.SOLD_OUT: (None, Drop.end_time <= now),
        },
    }[status]


def list_drops(status: str | None, limit: int, page: str | None) -> dict[str, Any]:
    """Drops whose derived status is `status` (all drops if None), soonest start first.

    Each stored-status partition of the by_status index is read from its own cursor and the results
    are merged by (start time, drop id). The page token carries one cursor per partition and the last
    position handed out, so a drop that changes partition between two pages is never listed twice.
    """
    if status is not None and status not in list(DropStatus):
        raise InvalidRequestError(f"status must be one of {', '.join(DropStatus)}")
    now = now_ms()
    sources = _drop_sources(None if status is None else DropStatus(status), now)
    cursors, after = _decode_drop_page(page, set(sources))
    items: list[dict[str, Any]] = []
    # A round can hand out nothing (all it read was listed already): read on, a bounded number of times.
    for _ in range(MAX_DROP_ROUNDS):
        taken, cursors, after = _drop_round(status, sources, cursors, after, limit - len(items), now)
        items += render_each(taken, drop_view)
        if after is None or len(items) >= limit:
            break
    if after is None:
        return page_body(items, None)
    return {"items": items, "next_page": encode_token({"cursors": cursors, "after": list(after)})}


MAX_DROP_ROUNDS = 4
Position = tuple[int, str]


def _drop_round(
    status: str | None,
    sources: dict[str, tuple[Any, Any]],
    cursors: dict[str, Any],
    after: Position | None,
    want: int,
    now: int,
) -> tuple[list[Drop], dict[str, Any], Position | None]:
    """One merge of every partition: the drops handed out, the next cursors, and the new position
    (None once every partition is read to its end)."""
    candidates: list[tuple[Position, str, Drop]] = []
    read_up_to: dict[str, tuple[Position, dict[str, Any]]] = {}  # partitions with more to read
    for stored, (key_condition, filter_condition) in sources.items():
        results = Drop.by_status.query(
            stored, key_condition, filter_condition, limit=want, last_evaluated_key=cursors.get(stored)
        )
        candidates += [((int(d.start_time), d.drop_id), stored, d) for d in with_hot_fields(list(results))]
        if results.last_evaluated_key:
            lek = results.last_evaluated_key
            read_up_to[stored] = ((int(lek["start_time"]["N"]), lek["drop_id"]["S"]), lek)
    candidates = sorted((c for c in candidates if after is None or c[0] > after), key=lambda c: c[0])
    # Only what every partition has been read up to can be ordered for sure.
    bound = min((position for position, _ in read_up_to.values()), default=None)
    # The partitions are read one after another: a drop that moved between two reads (its schedule
    # started it) was read in both, and is handed out once.
    eligible = list({c[0]: c for c in candidates if bound is None or c[0] <= bound}.values())
    taken = [c for c in eligible if status is None or derived_status(c[2], now) == status][:want]
    if len(taken) == want:
        cutoff: Position | None = taken[-1][0]
        if bound is None and not any(c[0] > taken[-1][0] for c in candidates):
            cutoff = None  # every partition read to its end, and nothing left after this page
    else:
        cutoff = bound
    if cutoff is None:
        return [c[2] for c in taken], cursors, None
    # A partition read to its end keeps its cursor, never "done": a drop may move into it later.
    next_cursors: dict[str, Any] = {}
    for stored in sources:
        consumed = [c[0] for c in candidates if c[1] == stored and c[0] <= cutoff]
        if stored in read_up_to and read_up_to[stored][0] <= cutoff:
            next_cursors[stored] = read_up_to[stored][1]
        elif consumed:
            position = consumed[-1]
            next_cursors[stored] = {
                "drop_id": {"S": position[1]},
                "status": {"S": stored},
                "start_time": {"N": str(position[0])},
            }
        else:
            next_cursors[stored] = cursors.get(stored)
    return [c[2] for c in taken], next_cursors, cutoff


def _decode_drop_page(page: str | None, sources: set[str]) -> tuple[dict[str, Any], tuple[int, str] | None]:
    if not page:
        return {}, None
    token = decode_token(page)
    cursors = token.get("cursors") if isinstance(token, dict) else None
    after = token.get("after") if isinstance(token, dict) else None
    if not isinstance(cursors, dict) or not set(cursors) <= sources:
        raise InvalidPageError("page is not a token this API issued")
    if not (
        isinstance(after, list)
        and len(after) == 2
        and isinstance(after[0], int)
        and not isinstance(after[0], bool)
        and isinstance(after[1], str)
    ):
        raise InvalidPageError("page is not a token this API issued")
    for stored, cursor in cursors.items():
        if cursor is not None:
            check_key(cursor, _DROP_KEY)
            if cursor["status"]["S"] != stored:
                raise InvalidPageError("page is not a token this API issued")
    return cursors, (after[0], after[1])
