"""devstack.contention without a server: the item gate on a fake clock, the size rules, the token
rules around a fake moto, and the specs and expressions the dev stack reads."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack import contention
from devstack.moto_messaging import valid_schedule_expression


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_transaction_overlaps_one_that_ran_or_held_the_item_when_it_arrived() -> None:
    clock = Clock()
    gate = contention.ItemGate(contention.ContentionPlan(hold_ms=2, item_wcu=0), clock)
    gate.hold(["a"], started=99.999)
    assert gate.busy("a", arrived=100.0) and gate.busy("a", arrived=100.0019)
    assert not gate.busy("a", arrived=99.998)  # queued before the first started: served after it
    assert not gate.busy("a", arrived=100.002) and not gate.busy("b", arrived=100.0)
    off = contention.ItemGate(contention.ContentionPlan(hold_ms=0, item_wcu=0), clock)
    off.hold(["a"], started=99.0)
    assert not off.busy("a", arrived=100.0)


def test_an_item_spends_its_burst_then_gets_its_rate_back() -> None:
    clock = Clock()
    gate = contention.ItemGate(contention.ContentionPlan(hold_ms=0, item_wcu=100), clock)
    gate.spend("hot", 199)
    assert not gate.throttled("hot")
    gate.spend("hot", 50)  # a write may overdraw
    assert gate.throttled("hot") and not gate.throttled("cold")
    clock.now += 0.49  # 49 units back: still none left
    assert gate.throttled("hot")
    clock.now += 0.02
    assert not gate.throttled("hot")
    clock.now += 60  # never more than the burst
    gate.spend("hot", 200)
    assert gate.throttled("hot")


class FakeItem:
    def __init__(self, size: int) -> None:
        self._size = size

    def size(self) -> int:
        return self._size


def test_write_units_count_kilobytes_of_the_larger_image_twice_in_a_transaction() -> None:
    assert contention.write_units(None, None) == 1
    assert contention.write_units(FakeItem(1024), FakeItem(100)) == 1
    assert contention.write_units(FakeItem(100), FakeItem(1025)) == 2
    assert contention.write_units(None, FakeItem(3000), transactional=True) == 6


def test_attribute_sizes_follow_dynamodb() -> None:
    assert contention.attribute_size({"S": "héllo"}) == 6
    assert contention.attribute_size({"BOOL": True}) == 1
    assert contention.attribute_size({"L": [{"S": "ab"}, {"NULL": True}]}) == 3 + 3 + 2
    assert contention.attribute_size({"M": {"k": {"S": "v"}}}) == 3 + 1 + 1 + 1
    assert contention.attribute_size({"SS": ["a", "bc"]}) == 3


class FakeMoto:
    """Answers TransactWriteItems with 200 and counts the writes it was asked for."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        json.loads(environ["wsgi.input"].read())
        self.writes += 1
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]


def call(app: Any, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    raw = json.dumps(body).encode()
    environ = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems", "wsgi.input": io.BytesIO(raw)}
    status: list[str] = []
    answer = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return status[0], json.loads(answer)


def put(value: str) -> dict[str, Any]:
    return {"Put": {"TableName": "T", "Item": {"pk": {"S": value}}}}


def test_a_client_request_token_is_answered_once_for_ten_minutes() -> None:
    clock, moto = Clock(), FakeMoto()
    rules = contention.TransactionRules(moto, clock)
    first = {"TransactItems": [put("a")], "ClientRequestToken": "t1"}
    assert call(rules, first)[0].startswith("200")
    assert call(rules, first)[0].startswith("200") and moto.writes == 1
    status, body = call(rules, {"TransactItems": [put("b")], "ClientRequestToken": "t1"})
    assert status.startswith("400") and body["__type"].endswith("#IdempotentParameterMismatchException")
    assert moto.writes == 1
    clock.now += 601
    assert call(rules, first)[0].startswith("200") and moto.writes == 2


def test_a_transaction_over_four_megabytes_never_reaches_moto() -> None:
    moto = FakeMoto()
    rules = contention.TransactionRules(moto)
    status, body = call(rules, {"TransactItems": [put("x" * 400_000) for _ in range(11)]})
    assert status.startswith("400") and body["__type"].endswith("#ValidationException") and moto.writes == 0
    assert call(rules, {"TransactItems": [put("x" * 400_000) for _ in range(10)]})[0].startswith("200")


@settings(deadline=None)
@given(st.text(max_size=40))
def test_any_contention_spec_parses_or_is_refused_with_a_message(spec: str) -> None:
    try:
        plan = contention.parse(spec)
    except ValueError as error:
        assert str(error)
    else:
        assert contention.parse(plan.describe()) == plan


@settings(deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_every_real_second_is_a_valid_at_expression(when: datetime) -> None:
    assert valid_schedule_expression(f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})")


@settings(deadline=None)
@given(st.text(max_size=40))
def test_an_expression_is_judged_without_failing(expression: str) -> None:
    assert valid_schedule_expression(expression) in (True, False)


@pytest.mark.parametrize("expression", ["at(2026-02-29T00:00:00)", "at(2026-01-01T24:00:00)", "rate(-1 days)"])
def test_impossible_expressions_are_refused(expression: str) -> None:
    assert not valid_schedule_expression(expression)
