"""The domain tier: the domain modules called directly, on moto in this process (tests/unit/conftest.py).

The rules the API tier proves through HTTP are proved here on the functions themselves, with many
more Hypothesis examples than a stack tier can afford; the stack tiers keep one HTTP example of each.
"""

from __future__ import annotations

import pytest

from chalicelib.core.config import Settings
from chalicelib.wiring import bootstrap


@pytest.fixture(scope="package", autouse=True)
def scheduler_group(in_process_aws: Settings) -> str:
    """The drops' schedule group, which the stack's deployment creates (moto starts with none)."""
    client = bootstrap.client("scheduler")
    if _group_missing(client, in_process_aws.scheduler_group):
        client.create_schedule_group(Name=in_process_aws.scheduler_group)
    return in_process_aws.scheduler_group


def _group_missing(client: object, name: str) -> bool:
    groups = client.list_schedule_groups()["ScheduleGroups"]  # type: ignore[attr-defined]
    return name not in {group["Name"] for group in groups}
