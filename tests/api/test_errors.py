"""The error contract of docs/api.md at the edge: stable codes, 400s for bad input, no stack traces."""

from __future__ import annotations

import pytest


def test_health(api) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"[1, 2]", b"", b'"text"', b"\xff\xfe"],
    ids=["malformed", "array", "empty", "string", "not-utf8"],
)
def test_malformed_bodies_are_400_invalid_request(api, payload) -> None:
    response = api.post("/auth/login", data=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@b.co"}, "password"),
        ({"email": 5, "password": "x"}, "email"),
        ({"email": "a@b.co", "password": "x", "extra": 1}, "extra"),
        ({"email": "not-an-email", "password": "x"}, "email"),
        ({"email": "a@b.co", "password": "x" * 300}, "password"),
    ],
)
def test_bad_fields_name_the_field(api, body, field) -> None:
    response = api.post("/auth/login", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["message"]


def test_unknown_route_is_403_like_api_gateway(api) -> None:
    assert api.get("/no/such/route").status_code == 403
    assert api.call("PUT", "/health").status_code == 403


def test_an_unexpected_failure_is_a_bare_500(api, app_patch) -> None:
    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    app_patch("chalicelib.domain.accounts", log_in=explode)  # in the api's environments
    response = api.post("/auth/login", json={"email": "a@b.co", "password": "x"})
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert "secret" not in response.text and "Traceback" not in response.text
