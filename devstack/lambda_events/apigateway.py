"""API Gateway REST proxy events (payload format 1.0) as a Lambda proxy integration receives them; the
sample is tests/events/apigw-rest-proxy.json."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.identity import ACCOUNT_ID


def rest_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    resource: str,
    path_parameters: dict[str, str] | None,
    claims: Any,
    stage: str,
    multi: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The proxy event of a request for `raw_path` (with its query string) that matched the route `resource`.

    `claims` are the Cognito authorizer's (None for a route without one); a body that is not text in
    UTF-8 is base64, as API Gateway sends binary bodies."""
    parts = urlsplit(raw_path)
    lower = {k.lower(): v for k, v in headers.items()}
    query = parse_qs(parts.query, keep_blank_values=True)
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    path = parts.path or "/"
    is_binary = body is not None and not (_is_text(lower.get("content-type", "")) and _is_utf8(body))
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": multi if multi is not None else {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "devstack",
            "authorizer": {"claims": claims, "scopes": None},
            "domainName": lower.get("host", "127.0.0.1"),
            "domainPrefix": "devstack",
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": lower.get("user-agent", "")},
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(time.time() * 1000),
            "resourceId": None,
            "resourcePath": resource,
            "stage": stage,
        },
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "body": (base64.b64encode(body).decode() if is_binary else body.decode("utf-8")) if body else None,
        "isBase64Encoded": bool(body) and is_binary,
    }


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return not kind or kind.startswith("text/") or kind.endswith("json") or kind == "application/x-www-form-urlencoded"
