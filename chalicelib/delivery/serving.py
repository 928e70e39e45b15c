"""Serving queue and draw lines: the admissions tick, and the slices that place and close big lines.

The admissions tick serves lines: the serving counter advances (for a queue at most
admissions_per_second since the start), but never past what the stock can serve: an admitted user
who has neither bought nor let their purchase window pass holds a slot, so an admission nobody uses
frees its slot when its window ends. Admission is conditional on the entry not being admitted yet,
so nobody is admitted twice however many ticks run at once.

Work that grows with the line is never done in one invocation. At the start, the tick hands the
placing of the early entries to the lines queue; each message is a slice, bounded in time, that
places entries in rank order a transaction at a time: one TransactWriteItems writes up to
SLICE_ENTRIES positions together with the line's progress (how many are placed, and the last rank),
on the condition that the progress is still what the slice read. A retried or duplicated slice
therefore finds the progress moved and repeats nothing; the copy that committed a batch is the one
that tells its entries. A slice that runs out of time puts the next slice on the queue. A draw is
closed the same way at the drop's end (`draw_lost` to everyone the draw never reached).

Every notice's event id is derived from the drop, the user, the kind and the position (never the
clock), and its time from the line (the start, the drop's end, the admission), so a notice written
twice is the same inbox row.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pynamodb.exceptions import UpdateError

from chalicelib.core import ports
from chalicelib.core.config import get_settings
from chalicelib.core.observability import count
from chalicelib.core.threads import in_context
from chalicelib.core.validation import format_time
from chalicelib.delivery import notifications, reach
from chalicelib.domain import admissions, catalog, connections
from chalicelib.domain.catalog import DRAW, QUEUE
from chalicelib.domain.lines import state_of
from chalicelib.schema import stock, topology
from chalicelib.schema.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.schema.messages import Envelope, FrameType, PoisonMessageError, send_messages
from chalicelib.schema.models import Admission, Drop, Line, admitted_by_slot, line_slot
from chalicelib.schema.retries import RetryingBatchProcessor

log = logging.getLogger("livedrop.serving")
_NAMESPACE = uuid.UUID("0b7d3c52-2f3e-4a43-8d0e-1f5a9c3e6b21")

PLACE, CLOSE = "place", "close"
# Positions written per transaction, with the line's progress as the hundredth item (the API's limit).
SLICE_ENTRIES = 99
# A slice's budget: well inside the lines function's timeout, and never more than half of what is left.
SLICE_SECONDS = 10.0
# Users admitted by one tick of one line at most; the rest of a big draw's winners come next tick.
ADMIT_PER_TICK = 400
# A slice message lost for this long (a DLQ, a purge) is sent again by the tick.
RESEND_MS = 300_000
_TELLERS = 8


class LineNotReadyError(Exception):
    """The rank index does not show every early entry yet (it is eventually consistent): retried."""


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def deadline_of(context: Any, budget_s: float | None = None) -> float:
    """A monotonic deadline: `budget_s` (SLICE_SECONDS), or half the invocation's remaining time if less."""
    budget_s = SLICE_SECONDS if budget_s is None else budget_s
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        budget_s = min(budget_s, remaining() / 2000)
    return time.monotonic() + budget_s


# --- the tick -----------------------------------------------------------------------------------
def run(event: Any = None) -> dict[str, int]:
    """The admissions function: tick every admission_tick_seconds for admission_loop_seconds (a
    Lambda scheduled once a minute), or once (the dev stack's pump calls it every tick)."""
    settings = get_settings()
    context = getattr(event, "context", None)
    began = time.monotonic()
    totals = {"lines": 0, "admitted": 0}
    while True:
        done = tick(deadline=deadline_of(context, settings.admission_tick_seconds * 5))
        totals = {key: totals[key] + done[key] for key in totals}
        if time.monotonic() - began + settings.admission_tick_seconds > settings.admission_loop_seconds:
            return totals
        time.sleep(settings.admission_tick_seconds)


def tick(at_ms: int | None = None, deadline: float | None = None) -> dict[str, int]:
    """One pass over every line whose drop has started."""
    now = now_ms() if at_ms is None else at_ms
    done = {"lines": 0, "admitted": 0}
    for line in Line.by_activity.query("active", Line.start_time <= now):
        done["lines"] += 1
        try:
            done["admitted"] += advance(line.drop_id, now, deadline)
        except Exception:
            log.exception("could not serve the line of drop %s", line.drop_id)
            count("LineTickFailures")
    return done


def advance(drop_id: str, at_ms: int | None = None, deadline: float | None = None) -> int:
    """Seal, start placing, serve or close one line, a step per call; how many users it admitted."""
    now = now_ms() if at_ms is None else at_ms
    line = Line.get(drop_id, consistent_read=True)
    drop = Drop.get(drop_id, consistent_read=True)
    if now < int(drop.start_time):
        return 0
    if now >= int(drop.end_time):
        if catalog.sale_mode_of(drop) == DRAW and line.placed:
            _hand_over(line, CLOSE, now)  # the close slices take the line off the tick when done
        else:
            line.update(actions=[Line.active.remove()])
        return 0
    if not line.sealed:
        line.update(actions=[Line.sealed.set(True)])
        line.refresh(consistent_read=True)
    if not line.placed:
        _hand_over(line, PLACE, now)
        return 0
    with reach.batched():  # the winners' e-mails and pushes leave in a few queue messages, not one each
        return _serve(drop, line, now, deadline)


def _hand_over(line: Line, kind: str, now: int) -> None:
    """Put the first slice of `kind` on the lines queue, once (again only if it seems lost)."""
    since = Line.placing_since if kind == PLACE else Line.closing_since
    began = line.placing_since if kind == PLACE else line.closing_since
    if began is not None and now - int(began) < RESEND_MS:
        return
    condition = since.does_not_exist() if began is None else since == began
    try:
        Line(drop_id=line.drop_id).update(actions=[since.set(now)], condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return  # another tick handed it over
        raise
    send_slice(kind, line.drop_id)


def send_slice(kind: str, drop_id: str) -> None:
    """Queue a slice of work on a line (its progress is kept on the line, so the message is just this)."""
    send_messages(topology.LINES, [{"kind": kind, "drop_id": drop_id}])


# --- slices -------------------------------------------------------------------------------------
def handle_slice_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The line_slices function: a batch (of one slice) from the lines queue."""
    deadline = deadline_of(context)

    def slice_record(record: SQSRecord) -> None:
        try:
            body = json.loads(record.body)
        except ValueError:
            raise PoisonMessageError("not JSON") from None
        handle_slice(body if isinstance(body, dict) else {}, deadline)

    return dict(process_partial_response(event, slice_record, RetryingBatchProcessor(topology.LINES), context))


def handle_slice(message: dict[str, Any], deadline: float) -> None:
    """One lines-queue message: a slice; queues the next one if the work is not finished."""
    kind, drop_id = message.get("kind"), message.get("drop_id")
    if kind not in (PLACE, CLOSE) or not isinstance(drop_id, str):
        raise PoisonMessageError(f"unknown lines message {kind!r}")
    more = place_slice(drop_id, deadline) if kind == PLACE else close_slice(drop_id, deadline)
    if more:
        send_slice(kind, drop_id)


def place_slice(drop_id: str, deadline: float) -> bool:
    """Place early entries in rank order until `deadline`; True when entries remain to place."""
    line = Line.get(drop_id, consistent_read=True)
    if line.placed:
        return False
    if not line.sealed:
        raise LineNotReadyError(f"the line of {drop_id} is not sealed yet")
    drop = Drop.get(drop_id, consistent_read=True)
    done, after = int(line.placed_count or 0), line.placed_rank
    if done == 0 and Admission.by_rank.count(drop_id) < int(line.early_count):
        raise LineNotReadyError(f"the rank index of {drop_id} is still catching up")
    winners = catalog.current_stock(drop) if catalog.sale_mode_of(drop) == DRAW else 0
    while True:
        condition = Admission.rank > after if after is not None else None
        batch = list(Admission.by_rank.query(drop_id, condition, limit=SLICE_ENTRIES))[:SLICE_ENTRIES]
        if not batch:
            _finish_placing(drop, done, now_ms())
            return False
        tx = Transaction()
        progress = Line.placed_count == done
        tx.update(
            "line",
            Line(drop_id=drop_id),
            [Line.placed_count.set(done + len(batch)), Line.placed_rank.set(str(batch[-1].rank))],
            progress | Line.placed_count.does_not_exist() if done == 0 else progress,
        )
        for index, key in enumerate(batch):
            entry = Admission(drop_id=drop_id, user_id=key.user_id)
            tx.update(f"entry{index}", entry, [Admission.position.set(done + index + 1)], Admission.user_id.exists())
        try:
            tx.commit()
        except TransactionCancelledError as cancelled:
            if cancelled.failed("line"):
                count("LineSliceRepeats")
                return False  # another copy of this slice placed the batch: it goes on from there
            raise
        count("LineEntriesPlaced", len(batch))
        told = [(key.user_id, done + index + 1) for index, key in enumerate(batch) if done + index + 1 > winners]
        _tell_all(drop_id, FrameType.QUEUE_POSITION, told, int(drop.start_time))
        done, after = done + len(batch), str(batch[-1].rank)
        if time.monotonic() >= deadline:
            return True


def _finish_placing(drop: Drop, placed: int, now: int) -> None:
    """Every early entry placed: the line may be served (a draw publishes its seed now)."""
    Line(drop_id=drop.drop_id).update(actions=[Line.placed.set(True)], condition=Line.placed_count == placed)
    if catalog.sale_mode_of(drop) != DRAW:
        return
    try:
        Drop(drop_id=drop.drop_id).update(actions=[Drop.drawn_at.set(now)], condition=Drop.drawn_at.does_not_exist())
        count("DrawsDrawn")
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
    catalog.drop_cache.invalidate(drop.drop_id)


def close_slice(drop_id: str, deadline: float) -> bool:
    """At a draw's end, tell every entry the draw never reached that it was not drawn, in slices;
    True while positions remain. Nobody hears `draw_lost` while a unit could still reach them."""
    line = Line.get(drop_id, consistent_read=True)
    drop = Drop.get(drop_id, consistent_read=True)
    total = int(line.early_count) + int(line.late_count)
    upto = int(line.closed_upto or 0)
    while upto < total:
        last = min(total, upto + SLICE_ENTRIES)
        window = Admission.by_position.query(drop_id, Admission.position.between(upto + 1, last))
        lost = [(entry.user_id, int(entry.position)) for entry in window if entry.admitted_at is None]
        # The inbox rows first (a repeat overwrites the same rows), then the progress, then the pushes:
        # only the copy that moved the progress pushes.
        ended = int(drop.end_time)
        notices = [(_notice(drop_id, user, FrameType.DRAW_LOST, position, ended), user) for user, position in lost]
        notifications.write_inboxes([(_inbox_copy(notice), [user]) for notice, user in notices])
        try:
            Line(drop_id=drop_id).update(
                actions=[Line.closed_upto.set(last)],
                condition=(Line.closed_upto == upto) | Line.closed_upto.does_not_exist()
                if upto == 0
                else Line.closed_upto == upto,
            )
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        _push_all(notices)
        upto = last
        if upto < total and time.monotonic() >= deadline:
            return True
    Line(drop_id=drop_id).update(actions=[Line.active.remove()])
    return False


# --- serving ------------------------------------------------------------------------------------
def _serve(drop: Drop, line: Line, now: int, deadline: float | None) -> int:
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
    # Every admission holds what one purchase may take (the per-user limit, else one unit), so whoever
    # the counter reaches can buy: it never admits more people than the units left can serve.
    each = int(drop.per_user_limit or 1)
    target = min(total, serving + max(0, (left - outstanding * each) // each), serving + ADMIT_PER_TICK)
    if catalog.sale_mode_of(drop) == QUEUE:
        target = min(target, int(drop.admissions_per_second) * max(0, now - int(drop.start_time)) // 1000)
    reached = list(stranded)
    if target > serving:
        # The counter first, so a reader never sees an admission ahead of it.
        _raise_counter(drop_id, Line.serving, target, [admitted_by_slot(line_slot(drop, now)).set(target)])
        reached += Admission.by_position.query(drop_id, Admission.position.between(serving + 1, target))
    expires = now + int(drop.admission_seconds) * 1000

    def admit(entry: Admission) -> bool:
        # Past the deadline an entry stays reached but not admitted: the next tick admits it.
        return (deadline is None or time.monotonic() < deadline) and _admit(drop, entry, now, expires)

    with ThreadPoolExecutor(max_workers=_TELLERS) as pool:
        admitted = sum(pool.map(in_context(admit), reached))
    if now_settled > settled:
        _raise_counter(drop_id, Line.settled, now_settled)
    if catalog.sale_mode_of(drop) == DRAW and now_settled >= total and target >= total and left > 0:
        _release(drop, now)
    return admitted


def _release(drop: Drop, now: int) -> None:
    """A draw whose order is exhausted (every entry offered a unit, none holding one) with units left:
    from now on they sell first-come, as the drop's `draw.released_at` announces."""
    if drop.released_at is not None:
        return
    try:
        Drop(drop_id=drop.drop_id).update(
            actions=[Drop.released_at.set(now)], condition=Drop.released_at.does_not_exist()
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return
        raise
    count("DrawsReleased")
    catalog.drop_cache.invalidate(drop.drop_id)


def _raise_counter(drop_id: str, attribute: Any, value: int, also: list[Any] | None = None) -> None:
    try:
        Line(drop_id=drop_id).update(actions=[attribute.set(value), *(also or [])], condition=attribute < value)
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
        "admission_token": admissions.issue_token(entry.user_id, drop.drop_id, expires),
        "admission_expires_at": format_time(expires),
    }
    kind = FrameType.DRAW_WON if catalog.sale_mode_of(drop) == DRAW else FrameType.ADMITTED
    notice = _notice(drop.drop_id, entry.user_id, kind, int(entry.position), now, data)
    if kind == FrameType.DRAW_WON:
        _guarded(lambda: notifications.write_inbox(_inbox_copy(notice), [entry.user_id]), entry.user_id, kind)
        # E-mail and Web Push, through the deliver queue: the window's end, never the token.
        until = {"drop_id": drop.drop_id, "admission_expires_at": data["admission_expires_at"]}
        mailed = Envelope.new(notice.event_id, kind, now, until)
        _guarded(lambda: reach.enqueue(mailed, [entry.user_id]), entry.user_id, kind)
    _push_all([(notice, entry.user_id)])
    return True


# --- notices ------------------------------------------------------------------------------------
def event_id_of(drop_id: str, user_id: str, kind: str, position: int) -> str:
    """A line notice's event id: the same for every retry, never two for one user, kind and place."""
    return str(uuid.uuid5(_NAMESPACE, f"{drop_id}/{user_id}/{kind}/{position}"))


def _notice(
    drop_id: str, user_id: str, kind: FrameType, position: int, at_ms: int, data: dict[str, Any] | None = None
) -> Envelope:
    body = {"drop_id": drop_id, "position": position, **(data or {})}
    return Envelope.new(event_id_of(drop_id, user_id, kind, position), kind, at_ms, body)


def _inbox_copy(notice: Envelope) -> Envelope:
    """The inbox keeps the drop alone: never the position, never an admission token."""
    return Envelope.new(notice.event_id, notice.event_type, notice.occurred_at_ms, {"drop_id": notice.data["drop_id"]})


def _tell_all(drop_id: str, kind: FrameType, told: list[tuple[str, int]], at_ms: int) -> None:
    _push_all([(_notice(drop_id, user, kind, position, at_ms), user) for user, position in told])


def _push_all(notices: list[tuple[Envelope, str]]) -> None:
    """Push each notice to its user's open connections, several users at once."""

    def push(item: tuple[Envelope, str]) -> None:
        notice, user_id = item
        # The frame carries all of the notice: the position and, once admitted, the token.
        frame = notice.frame(fields=None)
        _guarded(
            lambda: ports.pusher().push(connections.connections_of(user_id), frame, notice.occurred_at_ms),
            user_id,
            notice.event_type,
        )

    if len(notices) <= 1:
        for item in notices:
            push(item)
        return
    with ThreadPoolExecutor(max_workers=_TELLERS) as pool:
        list(pool.map(in_context(push), notices))


def _guarded(work: Any, user_id: str, kind: str) -> None:
    try:
        work()
    except Exception:
        # The user can always read their place (GET .../me); a lost push must not stop the line.
        log.exception("could not tell %s of %s", user_id, kind)
        count("LineNoticeFailures")
