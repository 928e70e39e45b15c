"""Queue and draw lines: who joined, in which order they are served, and the tick that serves them.

A queue drop's line: everyone who joins before the start gets a random ticket; at the start the line
is sealed and those tickets, sorted, are positions 1..n (joining first gives no advantage). Later
joiners take n+1, n+2… in arrival order. A draw's line: entries until the start (the draw), then
positions in the published draw order (chalicelib.draws).

The admissions tick serves lines: the serving counter advances (for a queue at most
admissions_per_second since the start), but never past what the stock can serve: an admitted user
who has neither bought nor let their purchase window pass holds a slot, so an admission nobody uses
frees its slot when its window ends. Admission is conditional on the entry not being admitted yet,
so nobody is admitted twice however many ticks run at once.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib import admissions, bootstrap, catalog, connections, draws, notifications, ratelimits, reach, stock
from chalicelib.catalog import DRAW, QUEUE
from chalicelib.config import get_settings
from chalicelib.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.errors import (
    InvalidPageError,
    LineClosedError,
    LineNotOpenError,
    NotInLineError,
    WrongSaleModeError,
)
from chalicelib.messages import Envelope, FrameType
from chalicelib.models import Admission, Drop, Line
from chalicelib.observability import count
from chalicelib.validation import format_time

log = logging.getLogger("livedrop.lines")
_NAMESPACE = uuid.UUID("0b7d3c52-2f3e-4a43-8d0e-1f5a9c3e6b21")


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
            created = _join_early(user_id, drop_id, now)
        except _SealedError:
            created = _join_late(user_id, drop_id, now)
    else:
        created = _join_late(user_id, drop_id, now)
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
        created = _join_early(user_id, drop_id, now)
    except _SealedError:
        raise LineClosedError("entries closed at the draw") from None
    if created:
        count("DrawEntered")
    return place_view(drop, _entry(drop_id, user_id), now), created


def _join_early(user_id: str, drop_id: str, now: int) -> bool:
    """An entry with a random ticket, counted on the line only while the line is not sealed."""
    tx = Transaction()
    entry = Admission(drop_id=drop_id, user_id=user_id, joined_at=now, ticket=secrets.token_hex(16))
    tx.put("entry", entry, Admission.user_id.does_not_exist())
    tx.update(
        "line", Line(drop_id=drop_id), [Line.early_count.add(1)], Line.drop_id.exists() & Line.sealed.does_not_exist()
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


def _join_late(user_id: str, drop_id: str, now: int) -> bool:
    """A place behind everyone before: the line's late counter, which also seals it (so the early
    count it returns is final)."""
    try:
        Admission.get(drop_id, user_id, consistent_read=True)
        return False
    except DoesNotExist:
        pass
    line = Line(drop_id=drop_id)
    line.update(actions=[Line.late_count.add(1), Line.sealed.set(True)], condition=Line.drop_id.exists())
    seq = int(line.late_count)
    entry = Admission(
        drop_id=drop_id, user_id=user_id, joined_at=now, late_seq=seq, position=int(line.early_count) + seq
    )
    try:
        entry.save(Admission.user_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False  # a concurrent join of the same user won; its number stays a gap the tick passes
        raise
    return True


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
    """GET /drops/{id}/entries: every entry id of a draw and its position once drawn (no user ids), so
    anyone can recompute the draw from the seed."""
    _drop_in_mode(drop_id, DRAW)
    start = None
    if page:
        # The page token names the last user listed: sealed, so the listing never shows a user id.
        after = admissions.unseal(page)
        if after is None or not after.startswith(f"{drop_id}/"):
            raise InvalidPageError("page is not a token this API issued for this listing")
        start = {"drop_id": {"S": drop_id}, "user_id": {"S": after[len(drop_id) + 1 :]}}
    results = Admission.query(drop_id, limit=limit, last_evaluated_key=start)
    items = [{"entry_id": entry.ticket, "position": _int(entry.position)} for entry in results]
    last = results.last_evaluated_key
    return {"items": items, "next_page": admissions.seal(f"{drop_id}/{last['user_id']['S']}") if last else None}


# --- the tick -----------------------------------------------------------------------------------
def run(event: Any = None) -> dict[str, int]:
    """The admissions function: tick every admission_tick_seconds for admission_loop_seconds (a
    Lambda scheduled once a minute), or once (the dev stack's pump calls it every tick)."""
    settings = get_settings()
    began = time.monotonic()
    totals = {"lines": 0, "admitted": 0}
    while True:
        done = tick()
        totals = {key: totals[key] + done[key] for key in totals}
        if time.monotonic() - began + settings.admission_tick_seconds > settings.admission_loop_seconds:
            return totals
        time.sleep(settings.admission_tick_seconds)


def tick(at_ms: int | None = None) -> dict[str, int]:
    """One pass over every line whose drop has started."""
    now = now_ms() if at_ms is None else at_ms
    done = {"lines": 0, "admitted": 0}
    for line in Line.by_activity.query("active", Line.start_time <= now):
        done["lines"] += 1
        try:
            done["admitted"] += advance(line.drop_id, now)
        except Exception:
            log.exception("could not serve the line of drop %s", line.drop_id)
            count("LineTickFailures")
    return done


def advance(drop_id: str, at_ms: int | None = None) -> int:
    """Seal, order or serve one line, a step per call; how many users it admitted."""
    now = now_ms() if at_ms is None else at_ms
    line = Line.get(drop_id, consistent_read=True)
    drop = Drop.get(drop_id, consistent_read=True)
    if now < int(drop.start_time):
        return 0
    if now >= int(drop.end_time):
        line.update(actions=[Line.active.remove()])
        return 0
    if not line.sealed:
        line.update(actions=[Line.sealed.set(True)])
        line.refresh(consistent_read=True)
    if not line.placed:
        # Positions are written in this pass and served from the next one, so the position index has them.
        _place(drop, line, now)
        return 0
    with reach.batched():  # the winners' e-mails and pushes leave in a few queue messages, not one each
        return _serve(drop, line, now)


def _place(drop: Drop, line: Line, now: int) -> None:
    """Give every early entry its position: sorted tickets (queue) or the draw order (draw)."""
    early = [entry for entry in Admission.query(drop.drop_id, consistent_read=True) if entry.late_seq is None]
    if catalog.sale_mode_of(drop) == DRAW:
        by_ticket = {str(entry.ticket): entry for entry in early}
        ordered = [by_ticket[ticket] for ticket in draws.draw_order(str(drop.draw_seed), list(by_ticket))]
    else:
        ordered = sorted(early, key=lambda entry: (str(entry.ticket), entry.user_id))
    for position, entry in enumerate(ordered, start=1):
        if entry.position is None:
            entry.update(actions=[Admission.position.set(position)])
    if catalog.sale_mode_of(drop) == DRAW:
        _publish_draw(drop, ordered, now)
    else:
        for entry in ordered:
            _tell(entry, FrameType.QUEUE_POSITION, {"position": _int(entry.position)}, now)
    line.update(actions=[Line.placed.set(True)])


def _publish_draw(drop: Drop, ordered: list[Admission], now: int) -> None:
    """Publish the seed, and tell everyone beyond the stock that they were not drawn (yet)."""
    try:
        Drop(drop_id=drop.drop_id).update(actions=[Drop.drawn_at.set(now)], condition=Drop.drawn_at.does_not_exist())
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
    catalog.drop_cache.invalidate(drop.drop_id)
    count("DrawsDrawn")
    for entry in ordered[catalog.current_stock(drop) :]:
        _tell(entry, FrameType.DRAW_LOST, {"position": _int(entry.position)}, now, inbox=True)


def _serve(drop: Drop, line: Line, now: int) -> int:
    drop_id = drop.drop_id
    serving, settled = int(line.serving), int(line.settled)
    total = int(line.early_count) + int(line.late_count)
    held: dict[int, Admission] = {}
    if serving > settled:
        window = Admission.by_position.query(drop_id, Admission.position.between(settled + 1, serving))
        held = {int(entry.position): entry for entry in window}
    # Reached by the counter but not admitted yet: a tick that stopped between the two, admitted now.
    stranded = [entry for entry in held.values() if entry.admitted_at is None]
    outstanding = len(stranded) + sum(1 for entry in held.values() if state_of(entry, now) == "admitted")
    now_settled = settled
    for position in range(settled + 1, serving + 1):
        entry = held.get(position)
        if entry is not None and state_of(entry, now) in ("admitted", "waiting"):
            break
        now_settled = position
    shards = catalog.shard_count_of(drop)
    left = stock.total(drop_id, shards, fresh=True) if shards > 1 else int(drop.stock)
    target = min(total, serving + max(0, left - outstanding))
    if catalog.sale_mode_of(drop) == QUEUE:
        target = min(target, int(drop.admissions_per_second) * max(0, now - int(drop.start_time)) // 1000)
    reached = list(stranded)
    if target > serving:
        # The counter first, so a reader never sees an admission ahead of it.
        _raise_counter(drop_id, Line.serving, target)
        reached += Admission.by_position.query(drop_id, Admission.position.between(serving + 1, target))
    expires = now + int(drop.admission_seconds) * 1000
    admitted = sum(1 for entry in reached if _admit(drop, entry, now, expires))
    if now_settled > settled:
        _raise_counter(drop_id, Line.settled, now_settled)
    return admitted


def _raise_counter(drop_id: str, attribute: Any, value: int) -> None:
    try:
        Line(drop_id=drop_id).update(actions=[attribute.set(value)], condition=attribute < value)
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise


def _admit(drop: Drop, entry: Admission, now: int, expires: int) -> bool:
    """Admit one user, exactly once, and hand them their token (push, and the inbox for a draw's winners)."""
    try:
        entry.update(
            actions=[Admission.admitted_at.set(now), Admission.admission_expires.set(expires)],
            condition=Admission.admitted_at.does_not_exist(),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    count("Admitted")
    data = {
        "position": _int(entry.position),
        "admission_token": admissions.issue_token(entry.user_id, drop.drop_id, expires),
        "admission_expires_at": format_time(expires),
    }
    kind = FrameType.DRAW_WON if catalog.sale_mode_of(drop) == DRAW else FrameType.ADMITTED
    _tell(entry, kind, data, now, inbox=kind == FrameType.DRAW_WON)
    return True


def _tell(entry: Admission, kind: FrameType, data: dict[str, Any], now: int, inbox: bool = False) -> None:
    """Push a line frame to the user's open connections (and write their inbox when asked)."""
    event_id = str(uuid.uuid5(_NAMESPACE, f"{entry.drop_id}/{entry.user_id}/{kind}/{data.get('position')}/{now}"))
    try:
        notice = Envelope.new(event_id, kind, now, {"drop_id": entry.drop_id, **data})
        if inbox:
            # The inbox keeps the drop alone: never the position, never an admission token.
            notifications.write_inbox(Envelope.new(event_id, kind, now, {"drop_id": entry.drop_id}), [entry.user_id])
        if kind == FrameType.DRAW_WON:
            # E-mail and Web Push, through the deliver queue: the window's end, never the token.
            until = {"admission_expires_at": data.get("admission_expires_at")}
            reach.enqueue(Envelope.new(event_id, kind, now, {"drop_id": entry.drop_id, **until}), [entry.user_id])
        # The frame carries all of the notice: the position and, once admitted, the token.
        bootstrap.pusher().push(connections.connections_of(entry.user_id), notice.frame(fields=None), now)
    except Exception:
        # The user can always read their place (GET .../me); a lost push must not stop the line.
        log.exception("could not tell %s of %s", entry.user_id, kind)
        count("LineNoticeFailures")
