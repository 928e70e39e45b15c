"""One request contract: validation and the OpenAPI document agree on every field's limits.

The document's request schemas are generated from the same Field rules validation enforces; these
tests hold the checked-in file to that, then check behaviour: whatever value a field gets, the
document's schema and validation accept or refuse it together (bodies, path ids, ?limit=, the
Idempotency-Key header, WebSocket frames).
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from chalicelib.core.errors import InvalidRequestError, MissingIdempotencyKeyError
from chalicelib.core.validation import MAX_ID_LENGTH, Field, command_from, is_id, rules_of
from chalicelib.edge.openapi import DOCUMENT, generated, request_schema
from chalicelib.schema import commands
from chalicelib.schema.commands import IDEMPOTENCY_KEY, PAGE_SIZE, PATH_PARAMETERS, REQUEST_BODIES, Watch
from chalicelib.schema.pagination import parse_limit
from tests.unit.domain.shop import examples

ROOT = Path(__file__).resolve().parents[2]
DOC = json.loads(DOCUMENT.read_text())
SCHEMAS = DOC["components"]["schemas"]
# Text made of characters every rule allows: control characters and lone surrogates are refused by
# validation for every text field, a rule the document leaves to docs/limits-and-faults.md.
SAFE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "_-. é", max_size=12)
VALID = {"email": "fan@example.com", "time": "2030-01-01T12:00:00Z", "currency": "USD", "id": "dr_1", "country": "US"}


def accepted(command: type, body: dict[str, Any]) -> bool:
    try:
        command_from(body, command)
    except InvalidRequestError:
        return False
    return True


def documented(schema: dict[str, Any], value: Any) -> bool:
    return Draft202012Validator(_ecma_patterns(schema)).is_valid(value)


def _ecma_patterns(schema: Any) -> Any:
    """The schema with its patterns read as JSON Schema reads them (ECMA-262: `$` is the end of the text),
    not as Python's `re` does (where `$` also matches before a final newline, so "0\n" would pass "^[0-9]+$")."""
    if isinstance(schema, dict):
        return {
            key: value[:-1] + r"\Z" if key == "pattern" and value.endswith("$") else _ecma_patterns(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_ecma_patterns(item) for item in schema]
    return schema


def valid_value(rule: Field) -> Any:
    if dataclasses.is_dataclass(rule.kind):
        return baseline(rule.kind)  # type: ignore[arg-type]
    if rule.kind is dict:
        return {key: True if rule.item is bool else "x" for key in rule.keys}
    if rule.choices:
        return rule.choices[0]
    if isinstance(rule.kind, str):
        return VALID[rule.kind]
    if rule.kind is int:
        return rule.min if rule.min is not None else 0
    return "x" * max(rule.min or 0, 1)


def baseline(command: type) -> dict[str, Any]:
    """A body every rule of `command` accepts (cross-field rules are the domain's, not validation's)."""
    return {name: valid_value(rule) for name, rule in rules_of(command).items()}


def around_limits(rule: Field) -> st.SearchStrategy[Any]:
    """Values at, just inside and just past each of the rule's limits, and of every other JSON type."""
    others = st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=2), st.just({"a": 1}))
    if rule.kind is int:
        low = (rule.min if rule.min is not None else 0) - 3
        high = (rule.max if rule.max is not None else 10) + 3
        # JSON Schema counts 1.0 as an integer, the API wants an integer literal: floats are left out.
        return st.one_of(st.integers(low, high), st.integers(), others, SAFE_TEXT)
    if dataclasses.is_dataclass(rule.kind):
        # A nested object: each field's own values around its limits, some fields missing, a stranger.
        nested = {name: around_limits(inner) for name, inner in rules_of(rule.kind).items()}  # type: ignore[arg-type]
        valid = baseline(rule.kind)  # type: ignore[arg-type]
        one_off = st.sampled_from(sorted(nested)).flatmap(
            lambda name: nested[name].map(lambda value: {**valid, name: value})
        )
        return st.one_of(one_off, st.just({**valid, "other": 1}), st.just({}), others, SAFE_TEXT)
    if rule.kind == "country":
        return st.one_of(st.sampled_from(["US", "GB", "us", "XX", "UK", "USA", ""]), others)
    if rule.kind is dict:
        # Objects of the declared keys and a stranger, each value of any kind, some keys missing.
        item = around_limits(Field(rule.item, min=1 if rule.item is str else None, max=rule.max))
        keys = st.sampled_from([*rule.keys, "other"])
        return st.one_of(st.dictionaries(keys, item, max_size=len(rule.keys) + 1), others, SAFE_TEXT)
    if rule.choices:
        return st.one_of(st.sampled_from(rule.choices), SAFE_TEXT, st.sampled_from([c.upper() for c in rule.choices]))
    if rule.kind == "id":
        near = st.integers(0, MAX_ID_LENGTH + 3).flatmap(lambda n: st.text(alphabet="ab_-9 .", min_size=n, max_size=n))
        return st.one_of(near, others, st.integers())
    if rule.kind == "currency":
        return st.one_of(st.text(alphabet="USDusd1", max_size=5), others)
    if rule.kind == "email":
        # Lengths around the 254-character limit; each one a well-formed address.
        sized = st.integers(240, 260).map(lambda n: "a" * 64 + "@" + "b" * (n - 69) + ".com")
        return st.one_of(sized, st.just("fan@example.com"), others, st.integers())
    if rule.kind == "time":
        return st.one_of(st.just("2030-01-01T12:00:00Z"), others, st.integers())
    low, high = rule.min or 0, rule.max if rule.max is not None else 20
    lengths = st.sampled_from(sorted({n for n in (low - 1, low, low + 1, high - 1, high, high + 1) if n >= 0}))
    sized_text = lengths.map(lambda n: "x" * n)
    return st.one_of(sized_text, SAFE_TEXT, others, st.integers())


def test_the_checked_in_document_is_the_generated_one() -> None:
    assert generated(DOC) == DOC, (
        "run `python -m chalicelib.edge.openapi` after changing a rule in chalicelib.schema.commands"
    )


@pytest.mark.parametrize("command", REQUEST_BODIES, ids=lambda c: c.__name__)
def test_each_request_body_is_documented_under_its_command_name(command: type) -> None:
    assert SCHEMAS[command.__name__] == request_schema(command)


def test_every_documented_request_body_is_a_declared_command() -> None:
    referenced = {
        operation["requestBody"]["content"]["application/json"]["schema"].get("$ref", "").rsplit("/", 1)[-1]
        for item in DOC["paths"].values()
        for operation in item.values()
        if "requestBody" in operation
    }
    # The payment webhook's body is the provider's event, checked by its signature, not by a command.
    assert referenced - {""} == {command.__name__ for command in REQUEST_BODIES}


@pytest.mark.parametrize("command", REQUEST_BODIES, ids=lambda c: c.__name__)
def test_required_and_unknown_fields_are_refused_by_both(command: type) -> None:
    schema, body = SCHEMAS[command.__name__], baseline(command)
    assert accepted(command, body) and documented(schema, body)
    for name in body:
        without = {key: value for key, value in body.items() if key != name}
        assert accepted(command, without) == documented(schema, without), (command.__name__, name)
    assert not accepted(command, body | {"unknown": 1}) and not documented(schema, body | {"unknown": 1})


@pytest.mark.parametrize(
    ("command", "name"),
    [(command, name) for command in REQUEST_BODIES for name in rules_of(command)],
    ids=lambda x: x.__name__ if isinstance(x, type) else x,
)
@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_field_value_is_accepted_by_both_or_by_neither(command: type, name: str, data: st.DataObject) -> None:
    rule = rules_of(command)[name]
    value = data.draw(around_limits(rule))
    body = baseline(command) | {name: value}
    assert accepted(command, body) == documented(SCHEMAS[command.__name__], body), (name, value)


def _parameters(place: str, name: str) -> list[dict[str, Any]]:
    return [
        parameter["schema"]
        for item in DOC["paths"].values()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if (parameter["in"], parameter["name"]) == (place, name)
    ]


def test_every_path_parameter_is_a_declared_id() -> None:
    names = {p["name"] for item in DOC["paths"].values() for op in item.values() for p in op.get("parameters", [])}
    path_names = {name for name in names if _parameters("path", name)}
    assert path_names == set(PATH_PARAMETERS)
    for name in path_names:
        assert all(schema == PATH_PARAMETERS[name].json_schema() for schema in _parameters("path", name)), name


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(alphabet="aZ09_-. /é", max_size=MAX_ID_LENGTH + 3), st.text(max_size=70)))
def test_a_path_id_the_document_allows_is_an_id_the_server_looks_up(value: str) -> None:
    # A path id that is no id is answered like an id that names nothing (404), never a 400.
    assert documented(PATH_PARAMETERS["drop_id"].json_schema(), value) == is_id(value)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(-5, 110), st.integers()))
def test_the_page_size_the_document_allows_is_the_one_the_server_takes(value: int) -> None:
    for schema in _parameters("query", "limit"):
        assert schema == PAGE_SIZE.json_schema()
        try:
            taken = parse_limit(str(value)) == value
        except InvalidRequestError:
            taken = False
        assert documented(schema, value) == taken, value


@settings(max_examples=200, deadline=None)
@given(length=st.integers(0, IDEMPOTENCY_KEY.max + 3 if IDEMPOTENCY_KEY.max else 300))
def test_the_idempotency_key_length_the_document_allows_is_the_one_the_server_takes(length: int) -> None:
    from chalicelib.domain.orders import idempotency_key_from

    (schema,) = _parameters("header", "Idempotency-Key")
    assert schema == IDEMPOTENCY_KEY.json_schema()
    key = "k" * length
    try:
        taken = idempotency_key_from(key) == key
    except (InvalidRequestError, MissingIdempotencyKeyError):
        taken = False
    assert documented(schema, key) == taken, length


def test_websocket_frames_take_the_drop_id_the_rest_api_takes() -> None:
    assert rules_of(Watch) == {"drop_id": PATH_PARAMETERS["drop_id"]}
    assert rules_of(commands.NewOrder)["drop_id"] == PATH_PARAMETERS["drop_id"]


def test_the_docs_state_the_id_limit_the_server_enforces() -> None:
    api_doc = (ROOT / "docs" / "api.md").read_text()
    limits = (ROOT / "docs" / "limits-and-faults.md").read_text()
    assert f"| ids | 1..{MAX_ID_LENGTH} letters, digits, `_` or `-` |" in api_doc
    assert f"a `drop_id` that is no id: over {MAX_ID_LENGTH} characters" in api_doc  # the WebSocket frames
    assert f"`drop_id` 1..{MAX_ID_LENGTH} characters" in api_doc
    assert re.search(rf"at most \*\*{MAX_ID_LENGTH}\*\* characters", limits)
