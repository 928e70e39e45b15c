"""Work on a line that grows with it, in slices through the lines queue: placing a line's early entries at
the start, and closing a draw at the drop's end.

Each message is a slice, bounded in time, that places entries in rank order a transaction at a time: one
TransactWriteItems writes up to SLICE_ENTRIES positions together with the line's progress (how many are
placed, and the last rank), on the condition that the progress is still what the slice read. A retried or
duplicated slice therefore finds the progress moved and repeats nothing; the copy that committed a batch
is the one that tells its entries. Before the first position the rank index is counted, a page at a time,
the count carried from slice to slice in the messages. A slice that runs out of time puts the next slice
on the queue. A draw is closed the same way (`draw_lost` to everyone the draw never reached).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pynamodb.exceptions import UpdateError

from chalicelib.core.budget import Budget, deadline_of
from chalicelib.core.observability import count
from chalicelib.delivery import line_notices, notifications
from chalicelib.domain import catalog
from chalicelib.domain.catalog import DRAW
from chalicelib.schema import topology
from chalicelib.schema.db import Transaction, TransactionCancelledError, now_ms
from chalicelib.schema.messages import FrameType, PoisonMessageError, send_messages
from chalicelib.schema.models import Admission, Drop, Line
from chalicelib.schema.retries import RetryingBatchProcessor

PLACE, CLOSE = "place", "close"
# Positions written per transaction, with the line's progress as the hundredth item (the API's limit).
SLICE_ENTRIES = 99
# Keys of the rank index read per query: while placing (ten transactions' worth) and while counting. A
# keys-only entry is about 120 bytes, so either page is well inside DynamoDB's 1 MB.
READ_PAGE = SLICE_ENTRIES * 10
COUNT_PAGE = 2000
# A slice's budget: well inside the lines function's timeout, and never more than half of what is left.
SLICE_SECONDS = 10.0


class LineNotReadyError(Exception):
    """The rank index does not show every early entry yet (it is eventually consistent): retried."""


def send_slice(kind: str, drop_id: str) -> None:
    """Queue a slice of work on a line (its progress is kept on the line, so the message is just this)."""
    send_messages(topology.LINES, [{"kind": kind, "drop_id": drop_id}])


def handle_slice_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The line_slices function: a batch (of one slice) from the lines queue."""
    deadline = deadline_of(context, SLICE_SECONDS)

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
    if kind == PLACE:
        following = place_slice(drop_id, deadline, _count_of(message.get("counted")))
        if following is not None:
            send_messages(topology.LINES, [following])
    elif close_slice(drop_id, deadline):
        send_slice(kind, drop_id)


def _count_of(value: Any) -> dict[str, Any] | None:
    """A count's progress as a message carries it; anything else counts from the start."""
    if not isinstance(value, dict) or not isinstance(value.get("n"), int) or value["n"] < 0:
        return None
    after = value.get("after")
    return {"n": value["n"], "after": after} if isinstance(after, str) or after is None else None


def place_slice(drop_id: str, deadline: float, counted: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Place early entries in rank order until `deadline`; the next slice's message while entries remain
    to place (None when the line is placed, or another copy of this slice is placing it).

    Before the first position, the rank index must show every early entry (it is eventually consistent):
    it is counted a page at a time, the count going on in the next slice's message (`counted`), so no
    slice reads more than its time allows however long the line. Every slice makes one step at least:
    a page counted, or a transaction of positions."""
    line = Line.get(drop_id, consistent_read=True)
    if line.placed:
        return None
    if not line.sealed:
        raise LineNotReadyError(f"the line of {drop_id} is not sealed yet")
    budget = Budget(deadline)
    done, after = int(line.placed_count or 0), line.placed_rank
    if done == 0:
        early = int(line.early_count)
        tally = counted or {"n": 0, "after": None}
        if tally["n"] < early:
            tally = _count_ranks(drop_id, early, budget, tally)
        # Reading a page to place is a step like counting one.
        if tally["n"] < early or not budget.room("count", "write"):
            return {"kind": PLACE, "drop_id": drop_id, "counted": tally}
    drop = Drop.get(drop_id, consistent_read=True)
    winners = catalog.current_stock(drop) if catalog.sale_mode_of(drop) == DRAW else 0
    while True:
        if not budget.room("read", "write"):
            return {"kind": PLACE, "drop_id": drop_id}
        condition = Admission.rank > after if after is not None else None
        with budget.step("read"):
            page = list(Admission.by_rank.query(drop_id, condition, limit=READ_PAGE))[:READ_PAGE]
        if not page:
            _finish_placing(drop, done, now_ms())
            return None
        for start in range(0, len(page), SLICE_ENTRIES):
            if start and not budget.room("write"):
                return {"kind": PLACE, "drop_id": drop_id}  # a page read is never without a write
            batch = page[start : start + SLICE_ENTRIES]
            with budget.step("write"):
                if not _place(drop_id, done, batch):
                    count("LineSliceRepeats")
                    return None  # another copy of this slice placed the batch: it goes on from there
                count("LineEntriesPlaced", len(batch))
                told = [(key.user_id, done + i + 1) for i, key in enumerate(batch) if done + i + 1 > winners]
                line_notices.tell_all(drop_id, FrameType.QUEUE_POSITION, told, int(drop.start_time))
            done, after = done + len(batch), str(batch[-1].rank)


def _count_ranks(drop_id: str, early: int, budget: Budget, counted: dict[str, Any]) -> dict[str, Any]:
    """Count the rank index on from `counted`, a page at a time while the budget holds one: the count so far.
    An index that ends short of the line is missing entries anywhere: the count starts again (at once the
    first time, retried when it was counted from the start)."""
    number, after = counted["n"], counted["after"]
    while number < early and budget.room("count"):
        condition = Admission.rank > after if after is not None else None
        with budget.step("count"):
            query = Admission.by_rank.query(drop_id, condition, limit=COUNT_PAGE)
            ranks = [str(key.rank) for key in query][:COUNT_PAGE]
        if not ranks:
            if counted["n"] == 0:
                raise LineNotReadyError(f"the rank index of {drop_id} is still catching up")
            return {"n": 0, "after": None}
        number, after = number + len(ranks), ranks[-1]
    return {"n": number, "after": after}


def _place(drop_id: str, done: int, batch: list[Admission]) -> bool:
    """Write the positions of `batch` after the `done` placed already, with the line's progress, in one
    transaction; False when the progress moved meanwhile (another copy of the slice wrote it)."""
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
            return False
        raise
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
    budget = Budget(deadline)
    while upto < total:
        if not budget.room("close"):
            return True
        with budget.step("close"):
            last = min(total, upto + SLICE_ENTRIES)
            window = Admission.by_position.query(drop_id, Admission.position.between(upto + 1, last))
            lost = [(entry.user_id, int(entry.position)) for entry in window if entry.admitted_at is None]
            # The inbox rows first (a repeat overwrites the same rows), then the progress, then the pushes:
            # only the copy that moved the progress pushes.
            ended = int(drop.end_time)
            notices = [
                (line_notices.notice(drop_id, user, FrameType.DRAW_LOST, pos, ended), user) for user, pos in lost
            ]
            notifications.write_inboxes([(line_notices.inbox_copy(notice), [user]) for notice, user in notices])
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
            line_notices.push_all(notices)
            upto = last
    Line(drop_id=drop_id).update(actions=[Line.active.remove()])
    return False
