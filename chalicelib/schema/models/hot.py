"""Hot drops: sharded stock, waiting rooms and draws, per-user rate limits, signing keys."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.core import timeline
from chalicelib.schema.models.base import NEW_AND_OLD_IMAGES, _index_meta, _meta, slot_counter


class StockShard(Model):
    """One slice of a sharded drop's stock; it carries the drop's times so an order checks the clock
    on the item it writes."""

    Meta = _meta("StockShards", stream_view_type=NEW_AND_OLD_IMAGES)
    # `drop_id#n`: a partition key of its own per shard, so each shard has a partition's full write rate.
    shard_id = UnicodeAttribute(hash_key=True)
    drop_id = UnicodeAttribute()
    shard = NumberAttribute()
    shard_count = NumberAttribute()
    stock = NumberAttribute()
    initial_stock = NumberAttribute()
    start_time = NumberAttribute()
    end_time = NumberAttribute()
    # The creator's order counters (chalicelib.domain.sales), moved by the writes that move this shard's stock.
    orders_placed = NumberAttribute(null=True)
    orders_failed = NumberAttribute(null=True)
    orders_expired = NumberAttribute(null=True)
    orders_cancelled = NumberAttribute(null=True)


class LinesByActivity(GlobalSecondaryIndex["Line"]):
    """Sparse: only lines still to serve carry `active`, so the admissions tick never scans."""

    Meta = _index_meta("by_activity", AllProjection())
    active = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class Line(Model):
    """A queue or draw drop's line: the counters the admissions tick advances."""

    Meta = _meta("Lines")
    drop_id = UnicodeAttribute(hash_key=True)
    sale_mode = UnicodeAttribute()
    start_time = NumberAttribute()
    end_time = NumberAttribute()
    active = UnicodeAttribute(null=True)
    early_count = NumberAttribute(default=0)  # joined before the start (or entered a draw)
    late_count = NumberAttribute(default=0)  # joined after the start, in arrival order
    sealed = BooleanAttribute(null=True)  # no more early joins: set by the first late join or the tick
    placed = BooleanAttribute(null=True)  # early positions written
    serving = NumberAttribute(default=0)  # positions up to this one are admitted
    settled = NumberAttribute(default=0)  # positions up to this one bought or let their window pass
    # Placing the early entries, a slice at a time (chalicelib.delivery.line_slices): since when, how many placed,
    # and the rank of the last one placed (the next slice starts after it).
    placing_since = NumberAttribute(null=True)
    placed_count = NumberAttribute(default=0)
    placed_rank = UnicodeAttribute(null=True)
    # Closing a draw at the drop's end: since when, and positions up to this one told the result.
    closing_since = NumberAttribute(null=True)
    closed_upto = NumberAttribute(default=0)
    # The line over time for the creator's view (chalicelib.domain.sales), in slots of the drop's
    # [opens_at, end_time) (chalicelib.core.timeline.LINE_SLOTS): `j<slot>` counts the joins (entries)
    # in a slot, moved with the count they add to; `a<slot>` is `serving` as last raised in the slot.
    # All 80 at up to 999,999 keep the row at 957 bytes: a join still writes under 1 KB.
    by_activity = LinesByActivity()


JOINS_PREFIX = "j"
ADMITTED_PREFIX = "a"


def line_span(drop: Any) -> tuple[int, int]:
    """The span a drop's line is counted over: from its opening (the drop's row's opens_at) to its end."""
    opens = drop.opens_at if drop.opens_at is not None else drop.start_time
    return int(opens), int(drop.end_time)


def line_slot(drop: Any, at_ms: int) -> int:
    """The slot of a drop's line a moment falls in."""
    return timeline.slot_of(*line_span(drop), at_ms, timeline.LINE_SLOTS)


def joined_in_slot(slot: int) -> NumberAttribute:
    return slot_counter(JOINS_PREFIX, slot)


def admitted_by_slot(slot: int) -> NumberAttribute:
    return slot_counter(ADMITTED_PREFIX, slot)


class AdmissionsByPosition(GlobalSecondaryIndex["Admission"]):
    Meta = _index_meta("by_position", AllProjection())
    drop_id = UnicodeAttribute(hash_key=True)
    position = NumberAttribute(range_key=True)


class AdmissionsByRank(GlobalSecondaryIndex["Admission"]):
    """Sparse: only early entries have a rank, the key their line is ordered by (chalicelib.delivery.line_slices)."""

    Meta = _index_meta("by_rank", KeysOnlyProjection())
    drop_id = UnicodeAttribute(hash_key=True)
    rank = UnicodeAttribute(range_key=True)


class AdmissionsByTicket(GlobalSecondaryIndex["Admission"]):
    """A draw's public entry list, in the order of its random entry ids."""

    Meta = _index_meta("by_ticket", IncludeProjection(["position"]))
    drop_id = UnicodeAttribute(hash_key=True)
    ticket = UnicodeAttribute(range_key=True)


class Admission(Model):
    """One user in a drop's line: queue position or draw rank, and their purchase window once admitted."""

    Meta = _meta("Admissions")
    drop_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    joined_at = NumberAttribute()
    ticket = UnicodeAttribute(null=True)  # early joiners' random ticket (a draw's public entry id)
    # Early entries' order key: the ticket (queue) or the draw's score and entry id (chalicelib.core.draws).
    rank = UnicodeAttribute(null=True)
    late_seq = NumberAttribute(null=True)
    position = NumberAttribute(null=True)
    admitted_at = NumberAttribute(null=True)
    admission_expires = NumberAttribute(null=True)
    bought = NumberAttribute(default=0)
    by_position = AdmissionsByPosition()
    by_rank = AdmissionsByRank()
    by_ticket = AdmissionsByTicket()


class RateLimit(Model):
    """A fixed-window counter of one user's requests of one kind (`kind#user#window`), gone with its TTL."""

    Meta = _meta("RateLimits")
    limit_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    ttl = TTLAttribute(null=True)


class SigningKey(Model):
    """A key the app signs with (admission tokens), made on first use; readable only where granted."""

    Meta = _meta("SigningKeys")
    name = UnicodeAttribute(hash_key=True)
    secret = UnicodeAttribute()
    created_at = NumberAttribute()
