"""Domain errors know no HTTP; the REST edge gives each the status docs/api.md promises, in one table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib.core import errors
from chalicelib.core.errors import LiveDropError, RateLimitedError, TryAgainError
from chalicelib.edge.web import error_response, status_of

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _all_errors() -> list[type[LiveDropError]]:
    found, todo = [], [LiveDropError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _documented_statuses() -> dict[str, int]:
    """code -> status from the error table of docs/api.md (the application's own codes)."""
    table = API_DOC.read_text().split("The codes:", 1)[1].split("\n\n", 2)[1]
    statuses: dict[str, int] = {}
    for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]+) \|", table, re.M):
        for code in re.findall(r"`([a-z_]+)`", codes):
            statuses[code] = int(status)
    return statuses


@pytest.mark.parametrize("cls", _all_errors(), ids=lambda c: c.__name__)
def test_a_domain_error_carries_no_http(cls: type[LiveDropError]) -> None:
    error = cls("why")
    assert not hasattr(error, "status") and not hasattr(error, "headers")
    assert error.code and error.message == "why"


def test_every_documented_code_answers_with_its_documented_status() -> None:
    documented = _documented_statuses()
    by_code = {cls.code: cls for cls in _all_errors()}
    checked = 0
    for code, status in documented.items():
        if code in by_code:
            assert status_of(by_code[code]("x")) == status, code
            checked += 1
    # Every error the application raises under its own code is in the table (the bases and the
    # WebSocket-only too_many_subscriptions frame excepted).
    assert set(by_code) - set(documented) <= {"not_found", "conflict", "too_many_subscriptions"}
    assert checked >= 25


def test_the_error_body_and_retry_after_come_from_the_error() -> None:
    busy = error_response(TryAgainError("the drop is busy, try again"))
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert json.loads(busy.body) == {"error": {"code": "try_again", "message": "the drop is busy, try again"}}
    limited = error_response(RateLimitedError("slow down", retry_after=7))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    refused = error_response(errors.SoldOutError("the drop is sold out"))
    assert refused.status_code == 409 and "Retry-After" not in refused.headers


def test_a_backend_that_does_not_answer_is_503_backend_unavailable_and_a_busy_one_try_again() -> None:
    from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
    from pynamodb.exceptions import GetError

    from chalicelib.edge.web import guarded

    def failing(error: Exception):
        def view() -> None:
            raise error

        return guarded(view)

    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem")
    cases = {
        "backend_unavailable": [
            ReadTimeoutError(endpoint_url="http://db"),
            ConnectTimeoutError(endpoint_url="http://db"),
            GetError("Failed to get item", cause=ReadTimeoutError(endpoint_url="http://db")),
        ],
        "try_again": [throttled, GetError("Failed to get item", cause=throttled)],
    }
    for code, raised in cases.items():
        for error in raised:
            response = failing(error)()
            assert response.status_code == 503 and json.loads(response.body)["error"]["code"] == code, error
    assert failing(ReadTimeoutError(endpoint_url="http://db"))().headers["Retry-After"] == "5"
