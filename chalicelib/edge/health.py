"""GET /health: whether this function can reach its data store, not only whether it runs."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.errors import BackendUnavailableError
from chalicelib.schema.models import User

log = logging.getLogger("livedrop.health")
_PROBE_KEY = "health-probe"  # never a user id (those are Cognito subs): the read finds nothing, cheaply


def check(stage: str) -> dict[str, Any]:
    """`{"status": "ok", ...}` when DynamoDB answers a read; BackendUnavailableError otherwise, within
    about aws.PROBE_SECONDS (the probe's client waits that long, once, for a backend that does not answer)."""
    try:
        aws.client("dynamodb", probe=True).get_item(
            TableName=get_settings().table_name(User.Meta.table), Key={"user_id": {"S": _PROBE_KEY}}
        )
    except Exception as error:
        log.warning("health: the data store does not answer: %s", error)
        raise BackendUnavailableError("the data store is not answering", retry_after=5) from None
    return {"status": "ok", "stage": stage, "backend": "ok"}
