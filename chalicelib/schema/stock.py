"""Sharded stock: a hot drop's units spread over N StockShard items, so its orders write N items
instead of one (DynamoDB gives each item about 1,000 WCU/s; see docs/sale-modes.md).

An order takes its units from one shard with enough stock, in its own single transaction; the levels
it picks from are a short-lived cache, corrected by what a refused transaction hands back. Reads add
the shards up (cached just as briefly as a drop).
"""

from __future__ import annotations

import random
import threading

from chalicelib.core.cache import TtlCache
from chalicelib.schema.models import StockShard

# Drops this large are sharded unless the creator chose a shard count.
AUTO_SHARD_STOCK = 10_000
AUTO_SHARDS = 8

_levels: TtlCache[dict[int, int]] = TtlCache("stock_shards", ttl_seconds=1.0)
_lock = threading.Lock()


def shard_count_for(stock: int, requested: int | None) -> int:
    """How many shards a new drop of `stock` units gets."""
    if requested is not None:
        return requested
    return AUTO_SHARDS if stock >= AUTO_SHARD_STOCK else 1


def split(stock: int, shards: int) -> list[int]:
    """`stock` units over `shards` shards as evenly as possible (the first ones take the remainder)."""
    base, extra = divmod(stock, shards)
    return [base + (1 if index < extra else 0) for index in range(shards)]


def shard_id(drop_id: str, shard: int) -> str:
    return f"{drop_id}#{shard}"


def shard_item(drop_id: str, shard: int) -> StockShard:
    """A shard's key, to update it."""
    return StockShard(shard_id=shard_id(drop_id, shard))


def new_shards(drop_id: str, stock: int, shards: int, start_time: int, end_time: int) -> list[StockShard]:
    """The shard items of a new drop."""
    return [
        StockShard(
            shard_id=shard_id(drop_id, index),
            drop_id=drop_id,
            shard=index,
            shard_count=shards,
            stock=units,
            initial_stock=units,
            start_time=start_time,
            end_time=end_time,
        )
        for index, units in enumerate(split(stock, shards))
    ]


def shard_rows(drop_id: str, shards: int) -> list[StockShard]:
    """Every shard of a drop as stored (strongly consistent)."""
    return list(StockShard.batch_get([shard_id(drop_id, index) for index in range(shards)], consistent_read=True))


def levels(drop_id: str, shards: int, fresh: bool = False) -> dict[int, int]:
    """Each shard's stock (strongly consistent reads when `fresh`, else cached for a second)."""
    if not fresh:
        found = _levels.get(drop_id)
        if found is not None:
            return found
    keys = [shard_id(drop_id, index) for index in range(shards)]
    read = {int(s.shard): int(s.stock) for s in StockShard.batch_get(keys, consistent_read=fresh)}
    return _levels.put(drop_id, read)


def total(drop_id: str, shards: int, fresh: bool = False) -> int:
    """The drop's stock: its shards added up."""
    return sum(max(0, units) for units in levels(drop_id, shards, fresh).values())


def observed(drop_id: str, shard: int, units: int) -> None:
    """Note a shard's level as a refused order saw it, so the next pick skips it."""
    with _lock:
        found = _levels.get(drop_id)
        if found is not None:
            _levels.put(drop_id, {**found, shard: units})


def pick(drop_id: str, shards: int, quantity: int, tried: set[int]) -> int | None:
    """A random shard not tried yet that holds `quantity` units (re-read once when the cache has none)."""
    for fresh in (False, True):
        candidates = [shard for shard, units in levels(drop_id, shards, fresh).items() if units >= quantity]
        candidates = [shard for shard in candidates if shard not in tried]
        if candidates:
            return random.choice(candidates)
    return None
