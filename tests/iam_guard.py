"""A pytest plugin: a session in which the dev stack's IAM check denied a call nobody provoked fails.

A missing grant shows in AWS as a broken feature; locally the denial is only logged while the
caller's retries or fallbacks hide it, so every such denial fails the run and is listed at its end.
Tests that provoke a denial on purpose do it inside `Enforcer.revoked` or `Enforcer.expecting_denials`.
"""

from __future__ import annotations

import pytest

from devstack import iam


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if iam.unexpected_denials() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    denials = iam.unexpected_denials()
    if not denials:
        return
    terminalreporter.section(
        "IAM denials (a grant is missing in chalicelib/functions.py, or the call is wrong)", red=True
    )
    for line in denials:
        terminalreporter.line(f"IAM: {line}", red=True)
    terminalreporter.line(f"{len(denials)} unexpected IAM denial(s): the session fails", red=True, bold=True)
