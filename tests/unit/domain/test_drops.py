"""Creating drops and the drop's status, on the catalog and scheduling functions themselves: the time,
stock and sale-mode rules (a refused drop leaves nothing behind), ownership, and the lifecycle the
schedules, the clock and the sweeper drive."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import (
    CreatorNotFoundError,
    DropNotFoundError,
    ForbiddenError,
    InvalidRequestError,
    ProductNotFoundError,
)
from chalicelib.domain import catalog, drop_listing, scheduling
from chalicelib.schema.models import Drop, Product
from chalicelib.wiring import bootstrap
from tests.unit.domain.shop import HOUR_MS, MINUTE_MS, drop_command, examples, new_drop, new_shop, new_user


def stored(drop_id: str) -> Drop:
    return Drop.get(drop_id, consistent_read=True)


def schedules_of(drop_id: str) -> set[str]:
    group = bootstrap.get_settings().scheduler_group
    names = {s["Name"] for s in bootstrap.client("scheduler").list_schedules(GroupName=group)["Schedules"]}
    return {name for name in names if name.startswith(drop_id)}


def latest_drop_of(product_id: str) -> str | None:
    return Product.get(product_id, consistent_read=True).latest_drop_id


def expected_refusal(start: int, end: int, stock: int, limit: int | None, low: int | None) -> str | None:
    """What catalog.create_drop must say of these terms (offsets from now, in ms), or None to accept."""
    if start >= end:
        return "start_time must be before end_time"
    if end <= 0:
        return "end_time must be in the future"
    if limit is not None and limit > stock:
        return "per_user_limit"
    if low is not None and low > stock:
        return "low_stock_threshold"
    return None


@pytest.fixture(scope="module")
def shop():
    return new_shop()


# Whole minutes and a half: never within seconds of now, which moves while the test runs.
offsets = st.integers(-180, 180).map(lambda minutes: minutes * MINUTE_MS + MINUTE_MS // 2)


@settings(max_examples=examples(10), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    start=offsets,
    end=offsets,
    stock=st.integers(1, 50),
    limit=st.none() | st.integers(1, 60),
    low=st.none() | st.integers(0, 60),
)
def test_a_drop_is_stored_with_its_schedules_exactly_when_its_terms_hold(shop, start, end, stock, limit, low) -> None:
    command = drop_command(shop, start, end, stock=stock, per_user_limit=limit, low_stock_threshold=low)
    refusal = expected_refusal(start, end, stock, limit, low)
    before = latest_drop_of(shop.product_id)
    if refusal is not None:
        with pytest.raises(InvalidRequestError, match=refusal):
            catalog.create_drop(shop.owner, shop.creator_id, command)
        assert latest_drop_of(shop.product_id) == before  # refused whole: no drop stored
        return
    drop = catalog.create_drop(shop.owner, shop.creator_id, command)
    assert drop["stock"] == stock and drop["per_user_limit"] == limit
    assert stored(drop["drop_id"]).low_stock_at == (max(1, stock // 10) if low is None else low)
    assert schedules_of(drop["drop_id"]) == {f"{drop['drop_id']}-start", f"{drop['drop_id']}-end"}
    assert drop["status"] == ("live" if start <= 0 else "scheduled")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"admissions_per_second": 5}, "does not apply"),
        ({"purchase_window_seconds": 60}, "does not apply"),
        ({"sale_mode": "queue", "entries_open_time": 1}, "does not apply"),
        ({"sale_mode": "draw", "admissions_per_second": 5}, "does not apply"),
        ({"sale_mode": "draw", "queue_opens_before_seconds": 5}, "does not apply"),
        ({"sale_mode": "draw", "per_user_limit": 2}, "per_user_limit must be 1"),
        ({"stock_shards": 11}, "stock_shards"),
    ],
)
def test_settings_of_another_sale_mode_or_impossible_shards_are_refused(shop, fields, message) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        new_drop(shop, 10 * MINUTE_MS, HOUR_MS, **fields)


def test_a_draw_needs_its_entries_to_open_before_a_future_draw(shop) -> None:
    soon = drop_command(shop, 10 * MINUTE_MS, HOUR_MS, sale_mode="draw")
    late = {**soon.__dict__, "entries_open_time": soon.start_time + 1}
    with pytest.raises(InvalidRequestError, match="entries_open_time"):
        catalog.create_drop(shop.owner, shop.creator_id, type(soon)(**late))
    with pytest.raises(InvalidRequestError, match="draw"):
        new_drop(shop, -MINUTE_MS, HOUR_MS, sale_mode="draw")
    drawn = new_drop(shop, 10 * MINUTE_MS, HOUR_MS, sale_mode="draw")
    assert drawn["per_user_limit"] == 1 and drawn["draw"]["commitment"]


def test_only_the_owner_sells_and_only_their_own_products(shop) -> None:
    other = new_shop()
    with pytest.raises(ForbiddenError):
        catalog.create_drop(other.owner, shop.creator_id, drop_command(shop))
    with pytest.raises(ForbiddenError):  # someone else's product under one's own creator
        catalog.create_drop(other.owner, other.creator_id, drop_command(shop))
    with pytest.raises(CreatorNotFoundError):
        catalog.create_drop(new_user(), "cr_nope", drop_command(shop))
    missing = drop_command(other)
    with pytest.raises(ProductNotFoundError):
        catalog.create_drop(other.owner, other.creator_id, type(missing)(**{**missing.__dict__, "product_id": "pr_no"}))
    with pytest.raises(DropNotFoundError):
        catalog.get_drop("dr_nope")


def test_the_schedules_start_and_end_a_drop_once(shop) -> None:
    drop = new_drop(shop, 10 * MINUTE_MS, HOUR_MS)
    drop_id, start, end = drop["drop_id"], stored(drop["drop_id"]).start_time, stored(drop["drop_id"]).end_time
    assert not scheduling.activate(drop_id, int(start) - 1)  # not before its time
    assert scheduling.activate(drop_id, int(start)) and stored(drop_id).status == "live"
    assert not scheduling.activate(drop_id, int(start))
    assert Product.get(shop.product_id, consistent_read=True).status == "live"
    assert not scheduling.end(drop_id, int(end) - 1)
    assert scheduling.end(drop_id, int(end)) and stored(drop_id).status == "ended"
    assert not scheduling.end(drop_id, int(end) + 1)
    assert Product.get(shop.product_id, consistent_read=True).status == "ended"
    assert scheduling.run_lifecycle({"drop_id": drop_id, "action": "start", "at": 0}) == "unchanged"
    with pytest.raises(LookupError):  # a schedule of a drop never stored is retried, then runs out
        scheduling.run_lifecycle({"drop_id": "dr_never", "action": "end", "at": 0})


def test_the_read_status_follows_the_clock_and_the_stock_before_any_schedule(shop) -> None:
    drop_id = new_drop(shop, -MINUTE_MS, HOUR_MS)["drop_id"]
    Drop(drop_id=drop_id).update(actions=[Drop.status.set("scheduled")])
    catalog.drop_cache.clear()
    assert catalog.get_drop(drop_id)["status"] == "live"
    Drop(drop_id=drop_id).update(actions=[Drop.stock.set(0)])
    catalog.drop_cache.clear()
    assert catalog.get_drop(drop_id)["status"] == "sold_out"


def test_the_sweeper_repairs_missed_schedules_and_follows_the_stock(shop) -> None:
    started = new_drop(shop, -MINUTE_MS, HOUR_MS)["drop_id"]
    sold = new_drop(shop, -MINUTE_MS, HOUR_MS)["drop_id"]
    Drop(drop_id=sold).update(actions=[Drop.stock.set(0)])
    scheduling.sweep()
    scheduling.sweep()
    assert stored(started).status == "live" and stored(sold).status == "sold_out"
    Drop(drop_id=sold).update(actions=[Drop.stock.set(2)])  # a returned reservation
    assert scheduling.sync_stock_status(sold) and stored(sold).status == "live"
    scheduling.sweep(int(stored(started).end_time))
    assert stored(started).status == "ended"


def test_a_drop_that_starts_while_the_list_is_read_is_listed_once(shop, monkeypatch) -> None:
    """The listing reads one stored status after another; a drop its schedule starts between two of
    those reads is found in both."""
    drop = new_drop(shop, 10 * MINUTE_MS, HOUR_MS)
    drop_id, start = drop["drop_id"], int(stored(drop["drop_id"]).start_time)
    read = Drop.by_status.query

    started = []

    def start_then_query(stored_status, *args, **kwargs):
        if stored_status != "scheduled" and not started:  # the scheduled drops are read by now
            started.append(scheduling.activate(drop_id, start))
        return read(stored_status, *args, **kwargs)

    monkeypatch.setattr(Drop.by_status, "query", start_then_query)
    listed = [d["drop_id"] for d in drop_listing.list_drops(None, 100, None)["items"]]
    assert started == [True] and stored(drop_id).status == "live"
    assert listed.count(drop_id) == 1
    assert len(listed) == len(set(listed))


def test_a_product_shows_its_drops_status_whichever_of_two_syncs_comes_last(shop) -> None:
    """The drop's start and its sell-out each sync the product; the start's sync may write last."""
    drop_id = new_drop(shop, -MINUTE_MS, HOUR_MS)["drop_id"]
    assert scheduling.activate(drop_id)
    Drop(drop_id=drop_id).update(actions=[Drop.stock.set(0)])
    assert scheduling.sync_stock_status(drop_id) and stored(drop_id).status == "sold_out"
    assert Product.get(shop.product_id, consistent_read=True).status == "sold_out"
    scheduling._sync_product(drop_id, "live")  # the start's sync, late
    assert Product.get(shop.product_id, consistent_read=True).status == "sold_out"
