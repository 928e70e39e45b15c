"""Frames to WebSocket clients through API Gateway's `@connections` management API, many at once."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.observability import count
from chalicelib.core.ports import PushReport
from chalicelib.core.threads import SharedPool, in_context
from chalicelib.domain import connections
from chalicelib.schema.db import now_ms

log = logging.getLogger("livedrop.pusher")

# Each post is one HTTPS round trip that mostly waits; 16 in flight keep 1,000 pushes well under a second
# without exceeding the client's pool of 64 connections when several consumers push at once.
PUSH_WORKERS = 16
_posters = SharedPool(PUSH_WORKERS, "pusher")


def _client() -> Any:
    endpoint = get_settings().ws_management_endpoint
    if not endpoint:
        raise RuntimeError("LIVEDROP_WS_MANAGEMENT_ENDPOINT is not set")
    return aws.client("apigatewaymanagementapi", endpoint_url=endpoint)


def push(connection_ids: Iterable[str], frame: dict[str, Any], occurred_at_ms: int | None = None) -> PushReport:
    """Send `frame` to every connection in parallel; a gone connection is forgotten and the rest go on."""
    ids = list(dict.fromkeys(connection_ids))
    report = PushReport()
    if not ids:
        return report
    data = json.dumps(frame, separators=(",", ":")).encode()
    # One connection (a reply, a single buyer) needs no hop through the pool.
    post = in_context(functools.partial(_post, data=data))
    outcomes = [_post(ids[0], data)] if len(ids) == 1 else list(_posters.get().map(post, ids))
    for connection_id, outcome in zip(ids, outcomes, strict=True):
        if outcome == "delivered":
            report.delivered += 1
        elif outcome == "gone":
            report.gone.append(connection_id)
        else:
            report.failed += 1
    if report.delivered:
        count("NotificationsPushed", report.delivered)
        if occurred_at_ms is not None:
            count("NotificationDelayMs", max(0, now_ms() - occurred_at_ms), MetricUnit.Milliseconds)
    if report.failed:
        count("PushFailures", report.failed)
    return report


def reply(connection_id: str, frame: dict[str, Any]) -> None:
    """Answer a client frame on its own connection (Chalice handlers cannot answer inline)."""
    push([connection_id], frame)


def is_gone(connection_id: str) -> bool:
    """Whether API Gateway says the connection is closed (any other answer counts as still open)."""
    client = _client()
    try:
        client.get_connection(ConnectionId=connection_id)
    except client.exceptions.GoneException:
        return True
    except (ClientError, BotoCoreError):
        log.warning("could not ask whether connection %s is open", connection_id)
    return False


def _post(connection_id: str, data: bytes) -> str:
    client = _client()
    try:
        client.post_to_connection(ConnectionId=connection_id, Data=data)
        return "delivered"
    except client.exceptions.GoneException:
        # The socket closed without its $disconnect reaching us (or it is still on its way): clean up now.
        try:
            connections.close_connection(connection_id)
        except Exception:
            log.exception("could not forget gone connection %s", connection_id)
        return "gone"
    except (ClientError, BotoCoreError):
        # Not retried here: the inbox row is the durable copy, and a retry would re-push to everyone else.
        log.exception("push to %s failed", connection_id)
        return "failed"
