"""A pytest plugin: a session in which the dev stack's IAM check denied a call nobody provoked fails.

A missing grant shows in AWS as a broken feature; locally the denial is only logged while the
caller's retries or fallbacks hide it, so every such denial fails the run and is listed at its end.
Tests that provoke a denial on purpose do it inside `Enforcer.revoked` or `Enforcer.expecting_denials`.
"""

from __future__ import annotations

import pytest

from devstack import iam

# Denials the workers of a parallel run (pytest-xdist) saw: each worker has a dev stack of its own and
# reports its denials when it finishes; the controller fails the session on them.
_from_workers: list[str] = []


def _denials() -> list[str]:
    return [*iam.unexpected_denials(), *_from_workers]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a worker: the controller reports and fails the session
        workeroutput["iam_denials"] = list(iam.unexpected_denials())
        return
    if _denials() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    _from_workers.extend(getattr(node, "workeroutput", {}).get("iam_denials", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workeroutput"):
        return
    denials = _denials()
    if not denials:
        return
    terminalreporter.section(
        "IAM denials (a grant is missing in chalicelib/functions.py, or the call is wrong)", red=True
    )
    for line in denials:
        terminalreporter.line(f"IAM: {line}", red=True)
    terminalreporter.line(f"{len(denials)} unexpected IAM denial(s): the session fails", red=True, bold=True)
