"""The response contract: every route's success answers are declared in chalicelib/schema/responses.py,
the document's response schemas are generated from them (test_request_contract checks the file is
the generated one), and the checker the API tier runs on every response does catch a drift."""

from __future__ import annotations

import copy
import json
from typing import Any, is_typeddict

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.statuses import DropStatus
from chalicelib.edge.openapi import document, type_schema
from chalicelib.schema import responses
from chalicelib.schema.responses import ROUTES
from tests.contract import ResponseChecker, drift, route_of

DOC = document()

# A drop as GET /drops/{id} answers it.
DROP: dict[str, Any] = {
    "drop_id": "dr_1",
    "product_id": "pr_1",
    "creator_id": "cr_1",
    "start_time": "2030-01-01T12:00:00Z",
    "end_time": "2030-01-01T13:00:00Z",
    "initial_stock": 10,
    "stock": 4,
    "status": "live",
    "per_user_limit": None,
    "low_stock_threshold": 1,
    "price_cents": 1500,
    "currency": "EUR",
    "sale_mode": "queue",
    "stock_shards": 1,
    "queue": {"opens_at": "2030-01-01T11:00:00Z", "admissions_per_second": 50, "purchase_window_seconds": 300},
    "draw": None,
}
DROP_KEYS = sorted(DROP)


def test_every_success_answer_of_the_document_is_declared_and_every_declaration_documented() -> None:
    documented = {
        (method.upper(), path, int(status))
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
        for status in operation["responses"]
        if status[0] == "2" or status == "304"
    }
    declared = {(method, path, status) for (method, path), answers in ROUTES.items() for status in answers}
    assert documented == declared


def test_every_declared_response_type_answers_some_route() -> None:
    used: dict[str, Any] = {}
    for answers in ROUTES.values():
        for body in answers.values():
            if body is not None:
                type_schema(body, used)
    declared = {name for name, value in vars(responses).items() if is_typeddict(value) and not name.startswith("_")}
    assert declared - set(used) == set()


def test_the_real_drop_example_is_the_declared_type() -> None:
    assert drift("GET", "/drops/{drop_id}", 200, DROP) == []


@given(key=st.text(min_size=1, max_size=20).filter(lambda key: key not in DROP))
def test_a_key_the_declaration_does_not_have_is_a_drift(key: str) -> None:
    assert drift("GET", "/drops/{drop_id}", 200, {**DROP, key: 1})


@given(key=st.sampled_from(DROP_KEYS))
def test_a_declared_key_left_out_is_a_drift(key: str) -> None:
    body = {name: value for name, value in DROP.items() if name != key}
    assert drift("GET", "/drops/{drop_id}", 200, body)


@given(status=st.text(max_size=12).filter(lambda text: text not in set(DropStatus)))
def test_a_status_outside_the_enum_is_a_drift(status: str) -> None:
    assert drift("GET", "/drops/{drop_id}", 200, {**DROP, "status": status})


@given(
    value=st.one_of(
        st.text(max_size=5), st.booleans(), st.floats(allow_nan=False).filter(lambda number: not number.is_integer())
    )
)
def test_a_retyped_nested_value_is_a_drift(value: Any) -> None:
    body = copy.deepcopy(DROP)
    body["queue"]["admissions_per_second"] = value
    assert drift("GET", "/drops/{drop_id}", 200, body)


def test_a_status_the_route_does_not_declare_is_a_drift() -> None:
    assert drift("GET", "/drops/{drop_id}", 201, DROP)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/drops/dr_1", "/drops/{drop_id}"),
        ("/drops/dr_1/queue/me", "/drops/{drop_id}/queue/me"),
        ("/users/u1/follows/cr_1", "/users/{user_id}/follows/{creator_id}"),
        ("/drops", "/drops"),
        ("/nowhere/at/all", None),
    ],
)
def test_a_request_path_finds_its_route(path: str, route: str | None) -> None:
    assert route_of(path) == route


def answer(method: str, url: str, status: int, body: Any, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["Content-Type"] = content_type
    response._content = json.dumps(body).encode()
    response.request = requests.Request(method, url).prepare()
    return response


def test_the_checker_records_a_drifted_success_response_and_nothing_else() -> None:
    checker = ResponseChecker("http://127.0.0.1:9/api")
    checker(answer("GET", "http://127.0.0.1:9/api/drops/dr_1?x=1", 200, DROP))
    checker(answer("GET", "http://127.0.0.1:9/api/drops/dr_1", 404, {"error": {"code": "x", "message": "y"}}))
    checker(answer("GET", "http://127.0.0.1:9/api/drops/dr_1/buyers", 200, "a,b", content_type="text/csv"))
    empty = answer("DELETE", "http://127.0.0.1:9/api/creators/cr_1/follow", 204, None)
    empty._content = b""  # API Gateway labels a 204 JSON all the same
    checker(empty)
    assert checker.found == []
    checker(answer("GET", "http://127.0.0.1:9/api/drops/dr_1", 200, {**DROP, "secret": "x"}))
    checker(answer("GET", "http://127.0.0.1:9/api/nowhere", 200, {}))
    blank = answer("GET", "http://127.0.0.1:9/api/me", 200, None)
    blank._content = b""  # a route declared with a body answering none
    checker(blank)
    assert len(checker.found) == 3
    assert "secret" in checker.found[0]
    assert "no documented route" in checker.found[1]
    assert checker.checked == 5  # the JSON success answers
