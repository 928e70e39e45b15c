"""What ships to Lambda is what the tests ran: one pin per package, equal to the installed version."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


def test_boto3_and_botocore_are_pinned_once_in_the_lambda_requirements_at_the_tested_versions() -> None:
    shipped = pins("requirements.txt")
    assert shipped["boto3"] == version("boto3")
    assert shipped["botocore"] == version("botocore")
    # The dev and infra files include requirements.txt or stay off these two: no second pin to drift.
    for other in ("requirements-dev.txt", "requirements-infra.txt"):
        assert not {"boto3", "botocore"} & set(pins(other)), other


def test_every_package_that_ships_is_pinned_at_the_installed_version() -> None:
    for package, pinned in pins("requirements.txt").items():
        assert version(package) == pinned, package
