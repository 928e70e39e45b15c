"""EventBridge Scheduler one-time schedules for a drop's start and end, which call the drop_lifecycle
function (chalicelib.domain.scheduling) on the second.

Scheduler fires an at() schedule within a 60-second window, so each schedule is set START_LEAD
seconds early and the target waits for the exact second before it flips the status.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.core.observability import count
from chalicelib.schema import topology

log = logging.getLogger("livedrop.scheduling")
START_LEAD_SECONDS = 60


def schedule_name(drop_id: str, action: str) -> str:
    """The idempotent schedule name of a drop's start or end."""
    return f"{drop_id}-{action}"


def schedule_drop(drop_id: str, start_ms: int, end_ms: int) -> None:
    """Create the start and end schedules; existing ones are left as they are. Raises what Scheduler
    raised: the caller stores no drop without its schedules (see unschedule_drop)."""
    settings = get_settings()
    scheduler = aws.client("scheduler")
    for action, at_ms in (("start", start_ms), ("end", end_ms)):
        fire_at = datetime.fromtimestamp(max(at_ms / 1000 - START_LEAD_SECONDS, time.time()), tz=UTC)
        try:
            scheduler.create_schedule(
                Name=schedule_name(drop_id, action),
                GroupName=settings.scheduler_group,
                ScheduleExpression=f"at({fire_at.strftime('%Y-%m-%dT%H:%M:%S')})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": settings.function_arn(topology.Fn.DROP_LIFECYCLE),
                    "RoleArn": settings.scheduler_role_arn,
                    "Input": json.dumps({"drop_id": drop_id, "action": action, "at": at_ms}),
                    "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConflictException":
                continue
            count("ScheduleFailures")
            raise


def unschedule_drop(drop_id: str) -> None:
    """Delete a drop's schedules (those that exist), best effort: one left behind fires on a drop that
    was never stored, and run_lifecycle's retries then run out harmlessly."""
    settings = get_settings()
    scheduler = aws.client("scheduler")
    for action in ("start", "end"):
        try:
            scheduler.delete_schedule(Name=schedule_name(drop_id, action), GroupName=settings.scheduler_group)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                log.warning("could not delete the %s schedule of drop %s: %s", action, drop_id, error)
        except BotoCoreError as error:
            log.warning("could not delete the %s schedule of drop %s: %s", action, drop_id, error)
