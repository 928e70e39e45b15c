"""The draw's published algorithm (docs/sale-modes.md), kept apart so it reads as its specification.

When entries open, a drop publishes `commitment = sha256(seed)` of a secret seed (64 hex digits, hashed
as ASCII text). At the draw it publishes the seed. Each entry has a public random `entry_id`; its
score is sha256 of `"<seed>:<entry_id>"` (ASCII) as hex, and the draw order is the entries sorted by
score (then by entry_id). The first `stock` entries win; units a winner leaves unclaimed go to the
next entries in that order.
"""

from __future__ import annotations

import hashlib


def commitment_of(seed: str) -> str:
    """What a drop publishes before the draw: the seed's sha256 in hex."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def rank_of(seed: str, entry_id: str) -> str:
    """An entry's sort key in the draw order: its score, then its id (scores are all 64 hex digits long)."""
    return f"{hashlib.sha256(f'{seed}:{entry_id}'.encode()).hexdigest()}:{entry_id}"


def draw_order(seed: str, entry_ids: list[str]) -> list[str]:
    """Every entry id, in the order the draw serves them."""
    return sorted(entry_ids, key=lambda entry_id: rank_of(seed, entry_id))
