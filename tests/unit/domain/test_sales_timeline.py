"""The sales chart's slots (chalicelib.core.timeline): at most 120 of them over any drop, covering it
whole, the narrowest readable width, and every moment in exactly one slot."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core import timeline
from tests.unit.domain.shop import examples

YEAR_MS = 366 * timeline.DAY_MS
starts = st.integers(min_value=1_600_000_000_000, max_value=2_000_000_000_000)
spans = st.integers(min_value=1, max_value=5 * YEAR_MS)
FAST = settings(max_examples=examples(200), deadline=None)


@FAST
@given(start=starts, span=spans)
def test_any_drop_gets_at_most_120_slots_that_cover_it_whole(start: int, span: int) -> None:
    end = start + span
    width, count = timeline.slot_width(start, end), timeline.slot_count(start, end)
    assert 1 <= count <= timeline.MAX_SLOTS
    assert width % timeline.MINUTE_MS == 0
    assert timeline.slot_start(start, end, 0) == start
    assert timeline.slot_start(start, end, count - 1) < end <= timeline.slot_start(start, end, count)


@FAST
@given(start=starts, span=spans)
def test_the_width_is_the_narrowest_readable_one(start: int, span: int) -> None:
    end = start + span
    width = timeline.slot_width(start, end)
    narrower = [w for w in (*timeline._WIDTHS_MS, *(d * timeline.DAY_MS for d in range(2, 8))) if w < width]
    # Any narrower width on the ladder would need more than 120 slots.
    assert all(-(-span // w) > timeline.MAX_SLOTS for w in narrower)


@FAST
@given(start=starts, span=spans, offset=st.integers(min_value=-YEAR_MS, max_value=6 * YEAR_MS))
def test_every_moment_falls_in_one_slot_clamped_to_the_drop(start: int, span: int, offset: int) -> None:
    end, at = start + span, start + offset
    slot = timeline.slot_of(start, end, at)
    count = timeline.slot_count(start, end)
    assert 0 <= slot < count
    if start <= at < end:
        assert timeline.slot_start(start, end, slot) <= at < timeline.slot_start(start, end, slot + 1)
    elif at < start:
        assert slot == 0
    else:
        assert slot == count - 1


def test_familiar_drops_get_familiar_widths() -> None:
    start = 1_800_000_000_000
    hour = 60 * timeline.MINUTE_MS
    assert timeline.slot_width(start, start + 10 * timeline.MINUTE_MS) == timeline.MINUTE_MS
    assert timeline.slot_count(start, start + 10 * timeline.MINUTE_MS) == 10
    assert timeline.slot_width(start, start + 2 * hour) == timeline.MINUTE_MS
    assert timeline.slot_width(start, start + 2 * hour + 1) == 2 * timeline.MINUTE_MS
    assert timeline.slot_width(start, start + 24 * hour) == 15 * timeline.MINUTE_MS
    assert timeline.slot_width(start, start + 30 * 24 * hour) == 6 * hour
    assert timeline.slot_width(start, start + 365 * 24 * hour) == 4 * timeline.DAY_MS
