"""Serving queue and draw lines: the admissions tick.

The admissions tick serves lines: the serving counter advances (for a queue at most
admissions_per_second since the start), but never past what the stock can serve: an admitted user
who has neither bought nor let their purchase window pass holds a slot, so an admission nobody uses
frees its slot when its window ends. Admission is conditional on the entry not being admitted yet,
so nobody is admitted twice however many ticks run at once.

Work that grows with the line is never done in one invocation: at the start, the tick hands the
placing of the early entries to the lines queue, and at a draw's end its closing
(chalicelib.delivery.line_slices). What the line tells people is chalicelib.delivery.line_notices.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core.budget import deadline_of
from chalicelib.core.config import get_settings
from chalicelib.core.observability import count
from chalicelib.core.threads import in_context
from chalicelib.core.validation import format_time
from chalicelib.delivery import line_notices, line_slices, notifications, reach
from chalicelib.domain import admissions, catalog
from chalicelib.domain.catalog import DRAW, QUEUE
from chalicelib.domain.lines import state_of
from chalicelib.schema import stock
from chalicelib.schema.db import now_ms
from chalicelib.schema.messages import Envelope, FrameType
from chalicelib.schema.models import Admission, Drop, Line, admitted_by_slot, line_slot

log = logging.getLogger("livedrop.serving")

# Users admitted by one tick of one line at most; the rest of a big draw's winners come next tick.
ADMIT_PER_TICK = 400
# A slice message lost for this long (a DLQ, a purge) is sent again by the tick.
RESEND_MS = 300_000


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
            _hand_over(line, line_slices.CLOSE, now)  # the close slices take the line off the tick when done
        else:
            line.update(actions=[Line.active.remove()])
        return 0
    if not line.sealed:
        line.update(actions=[Line.sealed.set(True)])
        line.refresh(consistent_read=True)
    if not line.placed:
        _hand_over(line, line_slices.PLACE, now)
        return 0
    with reach.batched():  # the winners' e-mails and pushes leave in a few queue messages, not one each
        return _serve(drop, line, now, deadline)


def _hand_over(line: Line, kind: str, now: int) -> None:
    """Put the first slice of `kind` on the lines queue, once (again only if it seems lost)."""
    since = Line.placing_since if kind == line_slices.PLACE else Line.closing_since
    began = line.placing_since if kind == line_slices.PLACE else line.closing_since
    if began is not None and now - int(began) < RESEND_MS:
        return
    condition = since.does_not_exist() if began is None else since == began
    try:
        Line(drop_id=line.drop_id).update(actions=[since.set(now)], condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return  # another tick handed it over
        raise
    line_slices.send_slice(kind, line.drop_id)


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

    def admit(entry: Admission) -> Envelope | None:
        # Past the deadline an entry stays reached but not admitted: the next tick admits it.
        return _admit(drop, entry, now, expires) if deadline is None or time.monotonic() < deadline else None

    with ThreadPoolExecutor(max_workers=line_notices.TELLERS) as pool:
        told = [
            (notice, entry.user_id)
            for notice, entry in zip(pool.map(in_context(admit), reached), reached, strict=True)
            if notice
        ]
    _tell_admitted(told)
    admitted = len(told)
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


def _admit(drop: Drop, entry: Admission, now: int, expires: int) -> Envelope | None:
    """Admit one user, exactly once: the notice that hands them their token (None if admitted before).
    A draw's winner is also e-mailed and pushed, through the deliver queue (never the token)."""
    try:
        entry.update(
            actions=[Admission.admitted_at.set(now), Admission.admission_expires.set(expires)],
            condition=Admission.admitted_at.does_not_exist(),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    count("Admitted")
    data = {
        "admission_token": admissions.issue_token(entry.user_id, drop.drop_id, expires),
        "admission_expires_at": format_time(expires),
    }
    kind = FrameType.DRAW_WON if catalog.sale_mode_of(drop) == DRAW else FrameType.ADMITTED
    notice = line_notices.notice(drop.drop_id, entry.user_id, kind, int(entry.position), now, data)
    if kind == FrameType.DRAW_WON:
        until = {"drop_id": drop.drop_id, "admission_expires_at": data["admission_expires_at"]}
        mailed = Envelope.new(notice.event_id, kind, now, until)
        line_notices.guarded(lambda: reach.enqueue(mailed, [entry.user_id]), entry.user_id, kind)
    return notice


def _tell_admitted(told: list[tuple[Envelope, str]]) -> None:
    """The tick's admitted users: a draw's winners' inbox rows in one BatchWriteItem per 25, then every
    push, their connections read together (line_notices.push_all)."""
    won = [
        (line_notices.inbox_copy(notice), [user]) for notice, user in told if notice.event_type == FrameType.DRAW_WON
    ]
    if won:
        try:
            notifications.write_inboxes(won)
        except Exception:
            # They can read their place (GET .../me); a lost row must not stop the line.
            log.exception("could not write the inbox rows of %d winners", len(won))
            count("LineNoticeFailures")
    line_notices.push_all(told)
