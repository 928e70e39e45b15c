"""The arithmetic of `python -m bench cost` and `python -m bench plan`, and of the capacity units the
calls benchmark measures them with."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import cost, plan, units

# --- DynamoDB sizing ---------------------------------------------------------------------------------


def test_items_are_sized_as_dynamodb_sizes_them() -> None:
    assert units.item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert units.item_size({"n": {"N": "12345"}}) == 1 + 3 + 1  # 5 digits: 3 bytes, plus 1
    assert units.item_size({"ok": {"BOOL": True}}) == 3
    assert units.item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert units.item_size({"é": {"S": "é"}}) == 4  # UTF-8 bytes, names included


@given(st.integers(min_value=0, max_value=400 * 1024))
def test_write_units_are_started_kilobytes_and_read_units_started_4kb(size: int) -> None:
    assert units.write_units(size) == max(1, math.ceil(size / 1024))
    assert units.read_units(size, consistent=True) == max(1, math.ceil(size / 4096))
    assert units.read_units(size, consistent=False) == units.read_units(size, consistent=True) / 2


def _table(projection: str) -> dict[str, Any]:
    return {
        "KeySchema": [{"AttributeName": "pk"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_status",
                "KeySchema": [{"AttributeName": "status"}],
                "Projection": {"ProjectionType": projection},
            }
        ],
    }


def _meter_call(table: dict[str, Any], item: dict[str, Any]) -> Any:
    def call(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Table": table} if operation == "DescribeTable" else {"Item": item}

    return call


@given(st.text(min_size=0, max_size=3000))
def test_a_put_pays_for_the_item_and_for_each_index_it_lands_in(payload: str) -> None:
    item = {"pk": {"S": "o1"}, "status": {"S": "paid"}, "body": {"S": payload}}
    meter = units.Meter()
    meter.record("PutItem", {"TableName": "T", "Item": item}, {})
    meter.settle(_meter_call(_table("ALL"), item))
    assert meter.write["T"] == 2 * units.write_units(units.item_size(item))
    transactional = units.Meter()
    body = {"Put": {"TableName": "T", "Item": item}}
    transactional.record("TransactWriteItems", {"TransactItems": [body]}, {})
    transactional.settle(_meter_call(_table("ALL"), item))
    assert transactional.write["T"] == 3 * units.write_units(units.item_size(item))


def test_an_update_that_touches_no_projected_attribute_leaves_a_keys_only_index_alone() -> None:
    item = {"pk": {"S": "d1"}, "status": {"S": "live"}, "stock": {"N": "5"}}
    update = {"TableName": "T", "Key": {"pk": {"S": "d1"}}, "ExpressionAttributeNames": {"#s": "stock"}}
    lean, full = units.Meter(), units.Meter()
    lean.record("UpdateItem", update, {})
    full.record("UpdateItem", update, {})
    lean.settle(_meter_call(_table("KEYS_ONLY"), item))
    full.settle(_meter_call(_table("ALL"), item))
    assert lean.write["T"] == 1 and full.write["T"] == 2


# --- cost ---------------------------------------------------------------------------------------------
FIGURES = {
    "calls": {"sns:PublishBatch": 1.0, "sqs:ReceiveMessage": 0.5, "sqs:DeleteMessageBatch": 0.5},
    "capacity": {"write_units_per_order": 10.0, "read_units_per_order": 4.0},
    "functions": {"api": {"invocations_per_order": 1.0, "mean_ms": 100.0}},
}


def test_each_cost_line_is_its_quantity_times_its_price() -> None:
    items = {line.item: line for line in cost.lines(FIGURES, 300, 10)}
    assert items["DynamoDB write units"].per_million == pytest.approx(10 * 0.625)
    assert items["DynamoDB read units"].per_million == pytest.approx(4 * 0.125)
    assert items["REST request (POST /orders)"].per_million == pytest.approx(3.50)
    assert items["SQS requests"].quantity == 1.0
    api_gb_s = 0.1 * cost.ACCESS["api"].memory / 1024
    assert items["Lambda duration (GB-s, card wait included)"].quantity == pytest.approx(api_gb_s)
    assert cost.per_million(list(items.values())) == pytest.approx(sum(i.per_million for i in items.values()))


@given(st.floats(min_value=1, max_value=5000), st.integers(min_value=1, max_value=10))
def test_charges_in_parallel_hold_the_function_for_a_share_of_the_card_wait(latency: float, concurrency: int) -> None:
    figures = {**FIGURES, "functions": {"payments": {"invocations_per_order": 0.1, "mean_ms": 10.0}}}
    sequential = cost.per_million(cost.lines(figures, latency, 1))
    parallel = cost.per_million(cost.lines(figures, latency, concurrency))
    assert parallel <= sequential
    assert cost.charge_wait_ms(latency, concurrency) == pytest.approx(latency / concurrency)


def test_a_functions_aws_duration_is_its_cpu_time_plus_its_calls_at_aws_latency() -> None:
    measured = {"mean_ms": 600.0, "cpu_ms": 12.0, "calls_per_invocation": 3.0}
    assert cost.invocation_ms(measured) == pytest.approx(12.0 + 3 * cost.AWS_CALL_MS)
    # A run without CPU figures falls back to the wall time it measured.
    assert cost.invocation_ms({"mean_ms": 600.0}) == 600.0


def test_the_report_ends_with_the_total_per_million_orders(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    total = re.fullmatch(r"per 1M orders: \$(\d+\.\d\d)", out[-1])
    assert total, out[-1]
    rows = [re.split(r"\s{2,}", line.strip()) for line in out if re.search(r"\d+\.\d\d\s+\d+\.\d%$", line)]
    assert len(rows) == 11
    assert float(total.group(1)) == pytest.approx(sum(float(r[-2]) for r in rows), abs=0.06)
    assert any("prices assumed" in line for line in out)


# --- plan ---------------------------------------------------------------------------------------------
PER = {**plan.DEFAULTS, "wcu_per_order": 18.0}
# The event sources' concurrency as deployed (tests/infra checks infra.stack's against the template).
CAPS = {"notify": 20, "push_slices": 20, "payments": 5, "deliver": 50}


def test_charging_is_bound_by_arrivals_or_by_payments_concurrency() -> None:
    drop = plan.Drop(followers=0, entrants=0, stock=3000, mode="first_come", order_rate=150)
    result = plan.plan(drop, PER, 0.00003, CAPS)
    # 5 invocations x 10 charges / 0.3 s = 166/s > 150/s: arrivals decide (20 s), plus one charge.
    assert result.stages["charge"] == pytest.approx(3000 / 150 + 0.3)
    slow = plan.plan(plan.Drop(0, 0, 3000, "first_come", order_rate=150, charge_concurrency=1), PER, 0.00003, CAPS)
    assert slow.stages["charge"] == pytest.approx(3000 / (5 / 0.3) + 0.3)
    assert any("MaximumConcurrency" in note for note in slow.notes)
    assert result.cost_usd == pytest.approx(3000 * 0.00003)


def test_a_big_line_is_sliced_and_big_audiences_need_quotas_raised() -> None:
    result = plan.plan(plan.Drop(200_000, 20_000, 5_000, "queue"), PER, 0.00003, CAPS)
    assert result.stages["seal line"] == pytest.approx(20_000 * PER["entrant_ms"] / 1000)
    # 800 slices of 250 connections, each an invocation posting 16 at a time (0.39 s): 20 at once (push_slices'
    # concurrency) would post 12,800/s, past the account's API Gateway rate, which then sets the pace.
    slice_s = 250 * 0.025 / 16
    assert "API Gateway requests/s" in "\n".join(result.quotas)
    assert result.stages["notify (drop_started)"] == pytest.approx(200_000 / (10_000 - 150))
    assert any(note.startswith("one admissions invocation") for note in result.notes)
    assert not any(note.startswith("one fanout invocation") for note in result.notes)  # a slice fits its timeout
    assert "WebSocket new connections/s" in "\n".join(result.quotas)
    # Ten slices at once: 80 waves, within the rate; one at a time: 800 waves.
    ten = plan.plan(plan.Drop(200_000, 20_000, 5_000, "queue", push_slices=10), PER, 0.00003, CAPS)
    assert ten.stages["notify (drop_started)"] == pytest.approx(80 * slice_s)
    assert "API Gateway requests/s" not in "\n".join(ten.quotas)
    one = plan.plan(plan.Drop(200_000, 20_000, 5_000, "queue", push_slices=1), PER, 0.00003, CAPS)
    assert one.stages["notify (drop_started)"] == pytest.approx(800 * slice_s)
    small = plan.plan(plan.Drop(1000, 100, 50, "draw", seal_slices=1), PER, 0.00003, CAPS)
    assert small.quotas == [] and small.notes == []
    assert "draw" in small.stages


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**5))
def test_more_followers_never_make_notify_faster_or_the_drop_cheaper(followers: int, extra: int) -> None:
    fewer = plan.plan(plan.Drop(followers, 10, 10, "first_come"), PER, 0.00003, CAPS)
    more = plan.plan(plan.Drop(followers + extra, 10, 10, "first_come"), PER, 0.00003, CAPS)
    assert more.stages["notify (drop_started)"] >= fewer.stages["notify (drop_started)"]
    assert more.cost_usd >= fewer.cost_usd


def test_the_command_refuses_a_negative_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        plan.main(["--followers", "-1", "--entrants", "0", "--stock", "1", "--mode", "draw"])
    assert exit_info.value.code == 2
    assert "--followers must be >= 0" in capsys.readouterr().err
