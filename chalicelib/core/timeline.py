"""A drop's sale cut into at most MAX_SLOTS equal slots, for the creator's chart of units sold and stock
over time (chalicelib.domain.sales). The width follows from the drop's duration alone, so an order
knows its slot when it is placed and a reader finds the same slots again: a ten-minute drop is
counted by the minute, a day-long one by the quarter hour, a month-long one by six hours.

Slots start at the drop's start. A moment outside the drop (a clock a little off) counts in the
first or last slot, so every unit sold is in some slot.
"""

from __future__ import annotations

MINUTE_MS = 60_000
DAY_MS = 1440 * MINUTE_MS
MAX_SLOTS = 120
# A queue's or draw's line over time (joins and admissions): fewer slots, since every join writes the
# row that holds them and it must stay under 1 KB.
LINE_SLOTS = 40
# Widths a reader can take in at a glance, narrowest first; past the last one, whole days.
_WIDTHS_MS = tuple(minutes * MINUTE_MS for minutes in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def slot_width(start_ms: int, end_ms: int, slots: int = MAX_SLOTS) -> int:
    """The narrowest width (ms) that cuts [start, end) into at most `slots` slots."""
    span = max(1, end_ms - start_ms)
    for width in _WIDTHS_MS:
        if _ceil_div(span, width) <= slots:
            return width
    return _ceil_div(span, slots * DAY_MS) * DAY_MS


def slot_count(start_ms: int, end_ms: int, slots: int = MAX_SLOTS) -> int:
    """How many slots the span has (1 to `slots`)."""
    return max(1, _ceil_div(max(1, end_ms - start_ms), slot_width(start_ms, end_ms, slots)))


def slot_of(start_ms: int, end_ms: int, at_ms: int, slots: int = MAX_SLOTS) -> int:
    """The slot a moment falls in, clamped to the span's slots."""
    index = (at_ms - start_ms) // slot_width(start_ms, end_ms, slots)
    return min(max(index, 0), slot_count(start_ms, end_ms, slots) - 1)


def slot_start(start_ms: int, end_ms: int, slot: int, slots: int = MAX_SLOTS) -> int:
    """When a slot begins (epoch ms)."""
    return start_ms + slot * slot_width(start_ms, end_ms, slots)
