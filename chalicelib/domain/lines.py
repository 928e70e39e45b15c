"""Queue and draw lines: joining them and reading one's place (chalicelib.delivery.serving serves them).

A queue drop's line: everyone who joins before the start gets a random ticket; at the start the line
is sealed and those tickets, sorted, are positions 1..n (joining first gives no advantage). Later
joiners take n+1, n+2… in arrival order. A draw's line: entries until the start (the draw), then
positions in the published draw order (chalicelib.core.draws). Each early entry carries its `rank`, the key
the line is ordered by, so the line is placed a slice at a time from an index instead of sorted whole.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.core import draws
from chalicelib.core.errors import (
    InvalidPageError,
    LineClosedError,
    LineNotOpenError,
    NotInLineError,
    WrongSaleModeError,
)
from chalicelib.core.observability import count
from chalicelib.core.validation import format_time
from chalicelib.domain import admissions, catalog, ratelimits
from chalicelib.domain.catalog import DRAW, QUEUE
from chalicelib.schema.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.schema.models import Admission, Drop, Line, joined_in_slot, line_slot

# A racing join of the same user waits this long, at most, for the first one's late place.
_PLACE_WAIT_S = 2.0


class _SealedError(Exception):
    """The line was sealed between the clock check and the join: the join is a late one."""


def _drop_in_mode(drop_id: str, mode: str) -> Drop:
    drop = catalog.load_drop(drop_id)
    if catalog.sale_mode_of(drop) != mode:
        raise WrongSaleModeError(f"this drop is not sold by {mode}")
    return drop


# --- joining ------------------------------------------------------------------------------------
def join_queue(user_id: str, drop_id: str, at_ms: int | None = None) -> tuple[dict[str, Any], bool]:
    """POST /drops/{id}/queue: the caller's place in the line, and whether this call made it."""
    now = now_ms() if at_ms is None else at_ms
    drop = _drop_in_mode(drop_id, QUEUE)
    if now < int(drop.opens_at):
        raise LineNotOpenError(f"the queue opens at {format_time(drop.opens_at)}")
    if now >= int(drop.end_time):
        raise LineClosedError("the drop has ended")
    ratelimits.take(ratelimits.JOINS, user_id, now)
    created = False
    if now < int(drop.start_time):
        try:
            created = _join_early(drop, user_id, now)
        except _SealedError:
            created = _join_late(drop, user_id, now)
    else:
        created = _join_late(drop, user_id, now)
    if created:
        count("QueueJoined")
    # The answer carries the place; the tick pushes positions once the line is ordered at the start.
    return place_view(drop, _entry(drop_id, user_id), now), created


def enter_draw(user_id: str, drop_id: str, at_ms: int | None = None) -> tuple[dict[str, Any], bool]:
    """POST /drops/{id}/entries: the caller's entry (one per user), and whether this call made it."""
    now = now_ms() if at_ms is None else at_ms
    drop = _drop_in_mode(drop_id, DRAW)
    if now < int(drop.opens_at):
        raise LineNotOpenError(f"entries open at {format_time(drop.opens_at)}")
    if now >= int(drop.start_time):
        raise LineClosedError("entries closed at the draw")
    ratelimits.take(ratelimits.JOINS, user_id, now)
    try:
        created = _join_early(drop, user_id, now)
    except _SealedError:
        raise LineClosedError("entries closed at the draw") from None
    if created:
        count("DrawEntered")
    return place_view(drop, _entry(drop_id, user_id), now), created


def early_entry(drop: Drop, user_id: str, now: int) -> Admission:
    """A new early entry: a random ticket, and the rank the line will be ordered by."""
    ticket = secrets.token_hex(16)
    rank = draws.rank_of(str(drop.draw_seed), ticket) if catalog.sale_mode_of(drop) == DRAW else ticket
    return Admission(drop_id=drop.drop_id, user_id=user_id, joined_at=now, ticket=ticket, rank=rank)


def _join_early(drop: Drop, user_id: str, now: int) -> bool:
    """An entry with a random ticket, counted on the line only while the line is not sealed."""
    drop_id = drop.drop_id
    tx = Transaction()
    entry = early_entry(drop, user_id, now)
    tx.put("entry", entry, Admission.user_id.does_not_exist())
    tx.update(
        "line",
        Line(drop_id=drop_id),
        [Line.early_count.add(1), joined_in_slot(line_slot(drop, now)).add(1)],
        Line.drop_id.exists() & Line.sealed.does_not_exist(),
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("entry"):
            return False  # one entry per user: the first one stands
        if cancelled.failed("line"):
            raise _SealedError from None
        raise
    return True


def _join_late(drop: Drop, user_id: str, now: int) -> bool:
    """A place behind everyone before. The user's entry is claimed first (one per user), then numbered
    from the line's late counter, which also seals the line (so the early count it returns is final):
    racing joins of one user take one number between them, never phantom places."""
    drop_id = drop.drop_id
    claim = Admission(drop_id=drop_id, user_id=user_id, joined_at=now)
    try:
        claim.save(Admission.user_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        _await_place(drop_id, user_id)
        return False
    line = Line(drop_id=drop_id)
    line.update(
        actions=[Line.late_count.add(1), Line.sealed.set(True), joined_in_slot(line_slot(drop, now)).add(1)],
        condition=Line.drop_id.exists(),
    )
    seq = int(line.late_count)
    claim.update(
        actions=[Admission.late_seq.set(seq), Admission.position.set(int(line.early_count) + seq)],
        condition=Admission.position.does_not_exist(),
    )
    return True


def _await_place(drop_id: str, user_id: str) -> None:
    """A racing join of the same user: wait (briefly) until the first one has numbered the place."""
    deadline = time.monotonic() + _PLACE_WAIT_S
    while time.monotonic() < deadline:
        entry = _entry(drop_id, user_id)
        if entry.position is not None or entry.rank is not None:
            return
        time.sleep(0.02)


def _entry(drop_id: str, user_id: str) -> Admission:
    try:
        return Admission.get(drop_id, user_id, consistent_read=True)
    except DoesNotExist:
        raise NotInLineError("you are not in this drop's line") from None


# --- reads --------------------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def state_of(entry: Admission, now: int) -> str:
    if entry.admitted_at is None:
        return "waiting"
    if int(entry.bought or 0) > 0:
        return "bought"
    if int(entry.admission_expires) <= now:
        return "expired"
    return "admitted"


def place_view(drop: Drop, entry: Admission, now: int) -> dict[str, Any]:
    """What a user sees of their place: position, state, and their admission token while it is valid."""
    state = state_of(entry, now)
    admitted = state == "admitted"
    view: dict[str, Any] = {
        "drop_id": drop.drop_id,
        "sale_mode": catalog.sale_mode_of(drop),
        "joined_at": format_time(entry.joined_at),
        "position": _int(entry.position),
        "state": state,
        "admission_token": (
            admissions.issue_token(entry.user_id, drop.drop_id, int(entry.admission_expires)) if admitted else None
        ),
        "admission_expires_at": format_time(entry.admission_expires) if entry.admission_expires else None,
    }
    if catalog.sale_mode_of(drop) == DRAW:
        view["entry_id"] = entry.ticket
    return view


def my_place(user_id: str, drop_id: str, mode: str) -> dict[str, Any]:
    """GET /drops/{id}/queue/me or /entries/me, with the line's serving counter."""
    drop = _drop_in_mode(drop_id, mode)
    view = place_view(drop, _entry(drop_id, user_id), now_ms())
    try:
        view["serving"] = int(Line.get(drop_id).serving)
    except DoesNotExist:
        view["serving"] = 0
    return view


def list_entries(drop_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """GET /drops/{id}/entries: every entry id of a draw and its position once drawn (no user ids), in
    the order of the random entry ids, so anyone can recompute the draw from the seed and nothing in
    the order is derived from who entered."""
    _drop_in_mode(drop_id, DRAW)
    start = None
    if page:
        # The page token names the last entry listed and its user: sealed, so the listing never shows a user id.
        after = admissions.unseal(page)
        parts = after.split("/") if after else []
        if len(parts) != 3 or parts[0] != drop_id:
            raise InvalidPageError("page is not a token this API issued for this listing")
        start = {"drop_id": {"S": drop_id}, "ticket": {"S": parts[1]}, "user_id": {"S": parts[2]}}
    results = Admission.by_ticket.query(drop_id, limit=limit, last_evaluated_key=start)
    items = [{"entry_id": entry.ticket, "position": _int(entry.position)} for entry in results]
    last = results.last_evaluated_key
    token = admissions.seal(f"{drop_id}/{last['ticket']['S']}/{last['user_id']['S']}") if last else None
    return {"items": items, "next_page": token}
