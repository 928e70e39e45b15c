"""Domain events of sharded drops: stock moves on the shards, sold_out on the drop's status (once)."""

from __future__ import annotations

from chalicelib.delivery import events
from tests.unit.test_events import DROP, record

SHARD = {"shard_id": "dr_1#3", "drop_id": "dr_1", "shard": 3, "shard_count": 8, "stock": 4, "initial_stock": 10}


def test_a_shards_stock_move_is_the_drops_stock_changed() -> None:
    moved = events.envelopes_for(record("MODIFY", "shard_id", SHARD | {"stock": 3}, SHARD))
    assert [(e["event_type"], e["data"]) for e in moved] == [
        ("stock_changed", {"drop_id": "dr_1", "shard_count": 8, "stock": None})  # the total is read when published
    ]
    assert events.envelopes_for(record("MODIFY", "shard_id", SHARD, SHARD)) == []
    assert events.envelopes_for(record("INSERT", "shard_id", SHARD)) == []


def test_a_sharded_drop_is_sold_out_when_its_status_says_so_and_only_then() -> None:
    sharded = DROP | {"stock_shards": 8, "stock": 80}
    live, sold_out = sharded | {"status": "live"}, sharded | {"status": "sold_out"}
    assert [e["event_type"] for e in events.envelopes_for(record("MODIFY", "drop_id", sold_out, live))] == ["sold_out"]
    assert events.envelopes_for(record("MODIFY", "drop_id", live, sold_out)) == []
    # An unsharded drop's sold_out comes from its stock, never twice from its status as well.
    plain_live, plain_out = DROP | {"status": "live", "stock": 0}, DROP | {"status": "sold_out", "stock": 0}
    assert events.envelopes_for(record("MODIFY", "drop_id", plain_out, plain_live)) == []
