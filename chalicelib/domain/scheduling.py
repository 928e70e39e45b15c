"""A drop's lifecycle on the clock: the target of its start and end schedules (chalicelib.schema.schedules),
which moves its status, and the sweeper that repairs whatever a schedule missed. Also the status
following the stock (live <-> sold_out): the commands the live_stock consumer and settlement call,
since the stream handler only derives and publishes events.

Scheduler fires an at() schedule within a 60-second window, so each schedule is set START_LEAD
seconds early and the target waits for the exact second before it flips the status. Whether an
order may be taken never depends on this status: the order's own condition checks the clock.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core.errors import DropNotFoundError
from chalicelib.core.observability import count
from chalicelib.core.statuses import DropStatus
from chalicelib.domain import catalog
from chalicelib.schema import stock
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop, Product
from chalicelib.schema.schedules import START_LEAD_SECONDS

log = logging.getLogger("livedrop.scheduling")
# A target never waits longer than this for its second (the schedule's lead plus slack).
MAX_WAIT_SECONDS = START_LEAD_SECONDS + 15


def run_lifecycle(event: dict[str, Any]) -> str:
    """The Scheduler target: wait for the exact second, then start or end the drop (a repeat is a no-op)."""
    drop_id = str(event["drop_id"])
    action = str(event["action"])
    at_ms = int(event.get("at") or 0)
    wait = at_ms / 1000 - time.time()
    if 0 < wait <= MAX_WAIT_SECONDS:
        time.sleep(wait)
    if action == "start":
        changed = activate(drop_id)
    elif action == "end":
        changed = end(drop_id)
    else:
        raise ValueError(f"unknown lifecycle action {action!r}")
    if not changed and Drop.count(drop_id, consistent_read=True, limit=1) == 0:
        # The schedules are made before the drop is committed: Scheduler retries until it is there
        # (or, for a drop whose creation failed, until its retries run out).
        raise LookupError(f"drop {drop_id} is not stored (yet)")
    return ("started" if action == "start" else "ended") if changed else "unchanged"


def _set_status(drop_id: str, status: str, condition: Any) -> bool:
    try:
        Drop(drop_id=drop_id).update(actions=[Drop.status.set(status)], condition=condition)
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


SYNC_ROUNDS = 3


def _sync_product(drop_id: str, status: str) -> None:
    """Products show their latest drop's status (kept for the by_status index).

    Two changes of one drop (its start, a sell-out) may sync its product in either order, so after
    writing, the drop is read again: a status it no longer has is written over with the one it has. The
    last write is then always followed by a read that agreed with it, and any later change of the drop
    makes a later write of its own."""
    product_id = catalog.drop_terms(drop_id).product_id  # immutable: cached, no read once seen
    for _ in range(SYNC_ROUNDS):
        try:
            Product(product_id=product_id).update(
                actions=[Product.status.set(status)], condition=Product.latest_drop_id == drop_id
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            return  # the product has a newer drop, whose status it shows
        current = str(Drop.get(drop_id, consistent_read=True, attributes_to_get=["status"]).status)
        if current == status:
            return
        status = current
    # The drop changed on every round: the change that moved it last syncs the product after this one.
    log.warning("drop %s changed status %d times while its product was synced", drop_id, SYNC_ROUNDS)


def activate(drop_id: str, at_ms: int | None = None) -> bool:
    """scheduled -> live once the start time has come."""
    now = now_ms() if at_ms is None else at_ms
    changed = _set_status(
        drop_id,
        DropStatus.LIVE,
        (Drop.status == DropStatus.SCHEDULED) & (Drop.start_time <= now) & (Drop.end_time > now),
    )
    if changed:
        _sync_product(drop_id, DropStatus.LIVE)
        # Orders may have emptied it while the status still said scheduled.
        sync_stock_status(drop_id, now)
    return changed


def end(drop_id: str, at_ms: int | None = None) -> bool:
    """Any status -> ended once the end time has come."""
    now = now_ms() if at_ms is None else at_ms
    # A cancelled drop stays cancelled (chalicelib.domain.drop_changes).
    unended = (Drop.status != DropStatus.ENDED) & (Drop.status != DropStatus.CANCELLED)
    changed = _set_status(drop_id, DropStatus.ENDED, unended & (Drop.end_time <= now))
    if changed:
        _sync_product(drop_id, DropStatus.ENDED)
    return changed


def sync_stock_status(drop_id: str, at_ms: int | None = None) -> bool:
    """live <-> sold_out as the stock reaches zero or comes back (a returned reservation)."""
    return _follow_stock(drop_id, at_ms, to_sold_out=True, to_live=True)


def mark_sold_out(drop_id: str, at_ms: int | None = None) -> bool:
    """live -> sold_out once the drop's stock is gone; True if this call moved it.

    The live_stock consumer calls it on a stock_changed of zero: the condition (or, for a sharded drop,
    its shards read after the write) decides, so a repeated or stale event moves nothing, and of two
    racing callers only one moves the status (a sharded drop's sold_out is announced once)."""
    return _follow_stock(drop_id, at_ms, to_sold_out=True, to_live=False)


def mark_back_in_stock(drop_id: str, at_ms: int | None = None) -> bool:
    """sold_out -> live once units came back (settlement, after a returned reservation); True if it moved."""
    return _follow_stock(drop_id, at_ms, to_sold_out=False, to_live=True)


def _follow_stock(drop_id: str, at_ms: int | None, to_sold_out: bool, to_live: bool) -> bool:
    now = now_ms() if at_ms is None else at_ms
    running = (Drop.start_time <= now) & (Drop.end_time > now)
    shards = _shard_count(drop_id)
    if shards > 1:
        # Its shards, read after the write that emptied or refilled one.
        empty = stock.total(drop_id, shards, fresh=True) <= 0
        sold_out: Any = (Drop.status == DropStatus.LIVE) & running if empty and to_sold_out else None
        live: Any = (Drop.status == DropStatus.SOLD_OUT) & running if not empty and to_live else None
    else:
        sold_out = (Drop.status == DropStatus.LIVE) & (Drop.stock <= 0) & running if to_sold_out else None
        live = (Drop.status == DropStatus.SOLD_OUT) & (Drop.stock > 0) & running if to_live else None
    if sold_out is not None and _set_status(drop_id, DropStatus.SOLD_OUT, sold_out):
        _sync_product(drop_id, DropStatus.SOLD_OUT)
        return True
    if live is not None and _set_status(drop_id, DropStatus.LIVE, live):
        _sync_product(drop_id, DropStatus.LIVE)
        return True
    return False


def _shard_count(drop_id: str) -> int:
    try:
        return catalog.drop_terms(drop_id).stock_shards
    except DropNotFoundError:
        return 1  # nothing to move: the status update's own condition fails too


def sweep(at_ms: int | None = None) -> dict[str, int]:
    """Repair what schedules missed: start due drops, end finished ones, follow the stock.

    A drop whose repair fails (a throttled write, say) is logged and counted in `failed`, and the sweep
    goes on with the others; the next run finds it again, since nothing about it changed."""
    now = now_ms() if at_ms is None else at_ms
    done = {"started": 0, DropStatus.ENDED: 0, "stock": 0, "failed": 0}

    def repair(drop: Drop, status: str) -> None:
        if drop.end_time <= now:
            done["ended"] += end(drop.drop_id, now)
        elif status == DropStatus.SCHEDULED:
            done["started"] += activate(drop.drop_id, now)
        elif (catalog.current_stock(drop) <= 0) == (status == DropStatus.LIVE):
            done["stock"] += sync_stock_status(drop.drop_id, now)

    for status in (DropStatus.SCHEDULED, DropStatus.LIVE, DropStatus.SOLD_OUT):
        try:
            due = catalog.with_hot_fields(list(Drop.by_status.query(status, Drop.start_time <= now)))
        except Exception:
            log.exception("could not list the %s drops; the next sweep tries again", status)
            done["failed"] += 1
            continue
        for drop in due:
            try:
                repair(drop, status)
            except Exception:
                log.exception("could not repair drop %s; the next sweep tries again", drop.drop_id)
                done["failed"] += 1
    if done["failed"]:
        count("SweepFailures", done["failed"])
    return done
