"""The event an EventBridge rule with a schedule (`rate(...)`, `cron(...)`) sends its Lambda target.

(An EventBridge Scheduler schedule sends its Target's Input instead: see devstack.pollers.scheduler.)
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from devstack.identity import ACCOUNT_ID, REGION, rule_arn


def scheduled_event(rule_name: str) -> dict[str, Any]:
    """A "Scheduled Event" from the rule `rule_name`, sent now."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [rule_arn(rule_name)],
        "detail": {},
    }
