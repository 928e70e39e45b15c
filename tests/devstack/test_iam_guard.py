"""A session in which the IAM check denied a call nobody provoked fails, naming the denial
(tests.iam_guard, the plugin tests/conftest.py loads); denials a test provokes on purpose do not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from devstack.identity import arn

REPO = Path(__file__).resolve().parents[2]

SESSION = """
import contextlib

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack import iam
from devstack.identity import ACCOUNT_ID, arn, client_kwargs


def test_a_call_the_role_does_not_grant():
    enforcer = iam.install(
        iam.Enforcer(policies={"fanout": []}, account=ACCOUNT_ID, role_prefix="t-", ws_api_id="a", ws_stage="s")
    )
    client = boto3.client("sns", **client_kwargs("http://127.0.0.1:9"))
    try:
        with iam.acting_as("fanout"), EXPECTING(enforcer), pytest.raises(ClientError):
            client.publish(TopicArn=arn("sns", "events"), Message="{}")
    finally:
        iam.uninstall(enforcer)
"""


def run_session(tmp_path: Path, expecting: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.iam_guard import pytest_sessionfinish, pytest_terminal_summary, pytest_testnodedown  # noqa: F401\n"
    )
    (tmp_path / "test_session.py").write_text(textwrap.dedent(SESSION).replace("EXPECTING(enforcer)", expecting))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            *args,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unprovoked_denial_fails_the_session_and_is_named(tmp_path: Path) -> None:
    result = run_session(tmp_path, "contextlib.nullcontext()")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert f"IAM: fanout may not sns:Publish on {arn('sns', 'events')} (Publish)" in result.stdout, result.stdout


def test_a_denial_in_a_worker_of_a_parallel_run_fails_the_session_and_is_named(tmp_path: Path) -> None:
    # `make test` runs the stack tiers in two workers (pytest-xdist), each with its own dev stack.
    result = run_session(tmp_path, "contextlib.nullcontext()", "-n", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert f"IAM: fanout may not sns:Publish on {arn('sns', 'events')} (Publish)" in result.stdout, result.stdout


def test_a_denial_the_test_provokes_on_purpose_passes(tmp_path: Path) -> None:
    result = run_session(tmp_path, "enforcer.expecting_denials()")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "may not" not in result.stdout
