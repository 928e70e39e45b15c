"""The response contract: every success response checked against the OpenAPI document's schema for its
route and status, which chalicelib.edge.openapi generates from chalicelib.schema.responses.

Checked here, in the test process, never in the app. The API tier hooks it onto its HTTP client, so a
response that drifts from its declared type fails the test that received it (tests/api/conftest.py);
the domain tier checks the domain's own answers with `drift`.
"""

from __future__ import annotations

import json
import re
import threading
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from jsonschema import Draft202012Validator

from chalicelib.edge.openapi import JSON, document


@lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern[str], str]]:
    found = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        found.append((re.compile(pattern + "$"), template))
    return found


def route_of(path: str) -> str | None:
    """The document's path template a request path matches (None: no documented route)."""
    return next((template for pattern, template in _templates() if pattern.match(path)), None)


@cache
def _validator(template: str, method: str, status: int) -> Draft202012Validator | None:
    doc = document()
    answer = doc["paths"][template].get(method.lower(), {}).get("responses", {}).get(str(status))
    if answer is None or JSON not in answer.get("content", {}):
        return None
    # The route's schema as the root, beside the components its $refs name.
    root = {**answer["content"][JSON]["schema"], "components": doc["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _statuses(template: str, method: str) -> set[str]:
    return set(document()["paths"][template].get(method.lower(), {}).get("responses", {}))


def drift(method: str, template: str, status: int, body: Any) -> list[str]:
    """What in `body` differs from the declared response of `method template` with `status` (nothing: none)."""
    validator = _validator(template, method, status)
    if validator is None:
        return [f"{method} {template} answers {status} with JSON, which its declaration does not list"]
    return [
        f"{method} {template} {status}: at /{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(body)
    ]


class ResponseChecker:
    """A `requests` response hook that records every 2xx JSON answer's drift from its declaration."""

    def __init__(self, base_url: str) -> None:
        self.base_path = urlsplit(base_url).path.rstrip("/")
        self.found: list[str] = []
        self.checked = 0
        self.seen: set[tuple[str, str, int]] = set()  # (method, route, status) answered at least once
        self._lock = threading.Lock()

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not 200 <= response.status_code < 300 or not response.headers.get("Content-Type", "").startswith(JSON):
            return
        self.checked += 1
        method = str(response.request.method)
        path = urlsplit(response.request.url).path.removeprefix(self.base_path)
        template = route_of(path)
        if template is not None:
            self.seen.add((method, template, response.status_code))
        if template is None:
            problems = [f"{method} {path}: no documented route"]
        elif not response.content and _validator(template, method, response.status_code) is None:
            # A 204 has no body, but API Gateway (and so the dev stack) still labels it JSON.
            problems = (
                []
                if str(response.status_code) in _statuses(template, method)
                else [f"{method} {path}: {response.status_code} not declared"]
            )
        else:
            try:
                body = json.loads(response.content)
            except ValueError:
                body = response.content[:200]
            problems = drift(method, template, response.status_code, body)
        if problems:
            with self._lock:
                self.found.extend(problems)

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.found[mark:]
