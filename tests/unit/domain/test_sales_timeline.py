"""The sales chart's slots (chalicelib.core.timeline): at most 120 of them over any drop, covering it
whole, the narrowest readable width, and every moment in exactly one slot; and the series of
GET /drops/{id}/sales, which counts each confirmed order once, in its slot."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import timeline
from chalicelib.core.statuses import OrderStatus
from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import lines, sales, settlement
from chalicelib.schema.models import Order
from tests.support import place_line
from tests.unit.domain.shop import HOUR_MS, MINUTE_MS, examples, new_drop, new_shop, new_user, order

PENDING = "tok_threeDSecureRequired"  # a token the fake provider leaves pending

YEAR_MS = 366 * timeline.DAY_MS
starts = st.integers(min_value=1_600_000_000_000, max_value=2_000_000_000_000)
spans = st.integers(min_value=1, max_value=5 * YEAR_MS)
FAST = settings(max_examples=examples(200), deadline=None)


limits = st.sampled_from([timeline.MAX_SLOTS, timeline.LINE_SLOTS])


@FAST
@given(start=starts, span=spans, slots=limits)
def test_any_drop_gets_at_most_its_limit_of_slots_that_cover_it_whole(start: int, span: int, slots: int) -> None:
    end = start + span
    width, count = timeline.slot_width(start, end, slots), timeline.slot_count(start, end, slots)
    assert 1 <= count <= slots
    assert width % timeline.MINUTE_MS == 0
    assert timeline.slot_start(start, end, 0, slots) == start
    assert timeline.slot_start(start, end, count - 1, slots) < end <= timeline.slot_start(start, end, count, slots)


@FAST
@given(start=starts, span=spans, slots=limits)
def test_the_width_is_the_narrowest_readable_one(start: int, span: int, slots: int) -> None:
    end = start + span
    width = timeline.slot_width(start, end, slots)
    narrower = [w for w in (*timeline._WIDTHS_MS, *(d * timeline.DAY_MS for d in range(2, 40))) if w < width]
    # Any narrower width on the ladder would need more slots than the limit.
    assert all(-(-span // w) > slots for w in narrower)


@FAST
@given(start=starts, span=spans, offset=st.integers(min_value=-YEAR_MS, max_value=6 * YEAR_MS), slots=limits)
def test_every_moment_falls_in_one_slot_clamped_to_the_drop(start: int, span: int, offset: int, slots: int) -> None:
    end, at = start + span, start + offset
    slot = timeline.slot_of(start, end, at, slots)
    count = timeline.slot_count(start, end, slots)
    assert 0 <= slot < count
    if start <= at < end:
        assert timeline.slot_start(start, end, slot, slots) <= at < timeline.slot_start(start, end, slot + 1, slots)
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


# --- the series GET /drops/{id}/sales answers with ------------------------------------------------
@pytest.fixture(scope="module")
def shop():
    return new_shop()


outcomes = st.sampled_from(["confirmed", "confirmed_in_a_batch", "confirmed_twice", "failed", "pending"])
placements = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 59)), st.integers(1, 2), outcomes), min_size=1, max_size=4
)


@settings(
    max_examples=examples(5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=placements)
def test_the_series_counts_each_confirmed_order_once_in_the_minute_it_was_placed(shop, plan) -> None:
    # An hour's drop, half gone: 60 one-minute slots, the series up to now (slot 30).
    drop = new_drop(shop, -30 * MINUTE_MS, 30 * MINUTE_MS, stock=20)
    drop_id, start = drop["drop_id"], parse_time("start", drop["start_time"])
    expected: dict[int, int] = {}
    batch = []
    for minute, quantity, outcome in plan:
        order_id = order(new_user(), drop_id, quantity, token=PENDING).order["order_id"]
        if minute is not None:
            # As an order stored before orders carried their slot, placed in that minute.
            Order(order_id=order_id).update(
                actions=[Order.sales_slot.remove(), Order.created_at.set(start + minute * MINUTE_MS + 1)]
            )
        slot = minute if minute is not None else int(Order.get(order_id, consistent_read=True).sales_slot)
        if outcome.startswith("confirmed"):
            expected[slot] = expected.get(slot, 0) + quantity
        if outcome == "confirmed_in_a_batch":
            batch.append((Order.get(order_id, consistent_read=True), "ref"))
        elif outcome == "confirmed":
            assert settlement.confirm_payment(order_id, "ref")
        elif outcome == "confirmed_twice":
            assert [settlement.confirm_payment(order_id, "ref") for _ in range(2)] == [True, False]
        elif outcome == "failed":
            assert settlement.release_reservation(order_id, OrderStatus.PAYMENT_FAILED)
    if batch:
        assert len(settlement.confirm_payments(batch)) == len(batch)
        assert settlement.confirm_payments(batch) == set()  # a redelivered batch changes nothing
    body = sales.drop_sales(shop.owner, drop_id)
    series = body["series"]
    assert body["series_slot_seconds"] == 60 and 31 <= len(series) <= 60  # up to the minute of the read
    assert [parse_time("at", p["at"]) for p in series] == [start + n * MINUTE_MS for n in range(len(series))]
    assert {n: p["sold"] for n, p in enumerate(series) if p["sold"]} == expected
    assert series[-1]["sold_total"] == body["units_sold"] == sum(expected.values())
    running = 0
    for point in series:
        running += point["sold"]
        assert (point["sold_total"], point["stock"]) == (running, 20 - running)
    assert body["line"] is None  # a first-come drop has no line


def test_a_queues_joins_and_admissions_are_counted_in_the_slot_they_happened(shop) -> None:
    # Opens 10 minutes before a start 10 minutes away, ends in an hour: 70 minutes in 2-minute slots.
    drop = new_drop(
        shop,
        10 * MINUTE_MS,
        HOUR_MS,
        sale_mode="queue",
        stock=10,
        queue_opens_before_seconds=600,
        admissions_per_second=1,
    )
    drop_id, start = drop["drop_id"], parse_time("start", drop["start_time"])
    opens = parse_time("opens", drop["queue"]["opens_at"])
    fans = [new_user() for _ in range(3)]
    for fan, at in zip(fans, (opens + 30_000, opens + 40_000, opens + 5 * MINUTE_MS), strict=True):
        assert lines.join_queue(fan, drop_id, at_ms=at)[1]
    assert not lines.join_queue(fans[0], drop_id, at_ms=opens + 7 * MINUTE_MS)[1]  # a retry: not counted again
    serving.advance(drop_id, start)  # seals the line and hands its placing over
    place_line(drop_id)
    assert serving.advance(drop_id, start + 1_000) == 1  # one a second: one admitted in slot 5
    assert serving.advance(drop_id, start + 5 * MINUTE_MS) == 2  # the rest, in slot 7
    line = sales.drop_sales(shop.owner, drop_id)["line"]
    assert (line["joins"], line["admissions"], line["slot_seconds"]) == (3, 3, 120)
    points = line["series"]
    assert [parse_time("at", p["at"]) for p in points] == [opens + n * 2 * MINUTE_MS for n in range(len(points))]
    assert [p["joins"] for p in points[:4]] == [2, 2, 3, 3]
    assert [p["admissions"] for p in points] == [0, 0, 0, 0, 0, 1, 1, 3]
