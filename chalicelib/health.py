"""GET /health: whether this function can reach its data store, not only whether it runs."""

from __future__ import annotations

import logging
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.errors import BackendUnavailableError
from chalicelib.models import User

log = logging.getLogger("livedrop.health")
_PROBE_KEY = "health-probe"  # never a user id (those are Cognito subs): the read finds nothing, cheaply


def check(stage: str) -> dict[str, Any]:
    """`{"status": "ok", ...}` when DynamoDB answers a read; BackendUnavailableError otherwise."""
    try:
        User.get(_PROBE_KEY)
    except DoesNotExist:
        pass
    except Exception as error:
        log.warning("health: the data store does not answer: %s", error)
        raise BackendUnavailableError("the data store is not answering", retry_after=5) from None
    return {"status": "ok", "stage": stage, "backend": "ok"}
