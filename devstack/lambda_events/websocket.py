"""API Gateway WebSocket events (`$connect`, `$default` messages, `$disconnect`) as the routes' Lambda
functions receive them; the samples are tests/events/apigw-websocket-*.json."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.ws_connections import Connection, aws_id, now_ms

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# API Gateway does not forward the hop-by-hop handshake headers to $connect.
_DROPPED_HEADERS = {"connection", "upgrade"}


@dataclass(frozen=True)
class WebSocketApi:
    """Where the events say they come from."""

    api_id: str
    stage: str
    # In AWS `https://{domainName}/{stage}` is the @connections endpoint; locally the management server's host:port.
    domain_name: str
    # The port clients connect to (X-Forwarded-Port).
    port: int


def _request_time(epoch_ms: int) -> str:
    t = time.gmtime(epoch_ms / 1000)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def request_context(api: WebSocketApi, conn: Connection, route_key: str, event_type: str) -> dict[str, Any]:
    """The requestContext every WebSocket event carries."""
    now = now_ms()
    request_id = aws_id()
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": _request_time(now),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": conn.connected_at,
        "requestTimeEpoch": now,
        "identity": {"sourceIp": conn.source_ip},
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": conn.connection_id,
        "apiId": api.api_id,
    }


def connect_event(api: WebSocketApi, conn: Connection, headers: Iterable[tuple[str, str]], path: str) -> dict[str, Any]:
    """The `$connect` event of a handshake with raw `headers` on `path` (its query string is passed on)."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() in _DROPPED_HEADERS:
            continue
        single[name] = value
        multi.setdefault(name, []).append(value)
    added = {
        "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}",
        "X-Forwarded-For": conn.source_ip,
        "X-Forwarded-Port": str(api.port),
        "X-Forwarded-Proto": "http",
    }
    for name, value in added.items():
        single[name] = value
        multi[name] = [value]
    event: dict[str, Any] = {"headers": single, "multiValueHeaders": multi}
    query = urlsplit(path).query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        event["queryStringParameters"] = {k: v for k, v in pairs}  # last value wins, as in API Gateway
        multi_query: dict[str, list[str]] = {}
        for k, v in pairs:
            multi_query.setdefault(k, []).append(v)
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"] = request_context(api, conn, "$connect", "CONNECT")
    event["isBase64Encoded"] = False
    return event


def message_event(api: WebSocketApi, conn: Connection, message: str | bytes) -> dict[str, Any]:
    """The `$default` event of one message (a binary frame's body is base64)."""
    context = request_context(api, conn, "$default", "MESSAGE")
    context["messageId"] = aws_id()
    if isinstance(message, bytes):
        return {"requestContext": context, "body": base64.b64encode(message).decode(), "isBase64Encoded": True}
    return {"requestContext": context, "body": message, "isBase64Encoded": False}


def disconnect_event(api: WebSocketApi, conn: Connection, code: int, reason: str) -> dict[str, Any]:
    """The `$disconnect` event of a connection closed with `code` and `reason`."""
    context = request_context(api, conn, "$disconnect", "DISCONNECT")
    context["disconnectStatusCode"] = code
    context["disconnectReason"] = reason
    headers = {"Host": context["domainName"], "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }
