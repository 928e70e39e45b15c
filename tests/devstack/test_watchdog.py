"""The dev stack watches its child processes (the embedded AWS, the WebSocket gateway): if one dies,
`python -m devstack` says so in one line and exits non-zero; and /health answers 503 when the data store
does not answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.devstack.test_devstack_process import _free_port
from tests.support import child_pids, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _command_line(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()


CHILDREN = [("devstack.moto_backend", "the embedded AWS"), ("devstack.ws_process", "the WebSocket gateway")]


@pytest.mark.parametrize(("module", "what"), CHILDREN)
def test_the_stack_exits_non_zero_with_one_line_when_a_child_process_dies(tmp_path, module, what) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
    errors = (tmp_path / "stderr").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--no-demo", "--http-port", str(_free_port()), "--ws-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line or line.strip() == "LiveDrop dev stack ready":
                break
        assert line.strip() == "LiveDrop dev stack ready", errors.read()
        # The embedded AWS runs as one process per service group, the gateway as one more; losing any is fatal.
        children = [pid for pid in child_pids(process.pid) if f"-m {module} " in _command_line(pid)]
        assert children, f"{module} runs as a child process"
        victim = max(children)
        os.kill(victim, signal.SIGKILL)
        code = process.wait(timeout=60)
        assert code != 0
        errors.seek(0)
        said = [line for line in errors.read().splitlines() if line.startswith("error:")]
        assert said == [f"error: {what} (pid {victim}) was killed by signal 9; "
                        "the dev stack cannot serve without it; stopping"]  # fmt: skip
    finally:
        stop_process(process)
        errors.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_is_503_backend_unavailable_when_the_data_store_does_not_answer() -> None:
    # The app in a process of its own, pointed at a port where nothing listens.
    script = textwrap.dedent(
        """
        import json
        from chalice.test import Client
        import app
        with Client(app.app) as client:
            response = client.http.get("/health")
            print(json.dumps({"status": response.status_code, "headers": dict(response.headers),
                              "body": json.loads(response.body)}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
    env.update(
        LIVEDROP_AWS_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_METRICS_DISABLED="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    answered = json.loads(result.stdout.strip().splitlines()[-1])
    assert answered["status"] == 503, result.stdout + result.stderr
    assert answered["body"]["error"]["code"] == "backend_unavailable"
    assert {name.lower() for name in answered["headers"]} >= {"retry-after"}


def test_health_says_ok_when_the_data_store_answers(api) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json()["backend"] == "ok"


def test_a_frozen_data_store_is_a_prompt_503_not_a_gateway_timeout(stack, api, new_user) -> None:
    """issue 24 #6: with the embedded DynamoDB stopped (SIGSTOP, resumed after), /health answers 503 in
    about a second and an API call 503 backend_unavailable within its timeouts, not 504 after 29 s."""
    from devstack.moto_backend import DYNAMODB
    from tests.support import wait_for

    user = new_user()
    assert api.get("/health").status_code == 200  # as a load balancer polls it: its client is made
    frozen = stack.aws.processes[DYNAMODB].pid
    assert frozen is not None
    os.kill(frozen, signal.SIGSTOP)
    try:
        started = time.monotonic()
        health = api.get("/health")
        health_took = time.monotonic() - started
        started = time.monotonic()
        read = api.get(f"/users/{user.user_id}/orders", user.token)
        read_took = time.monotonic() - started
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert health.status_code == 503 and health.json()["error"]["code"] == "backend_unavailable"
    assert read.status_code == 503 and read.json()["error"]["code"] == "backend_unavailable", read.text
    assert read.headers["Retry-After"] == "5"
    # The probe waits 1 s; a call at most 2 x 10 s plus backoff, answered before the gateway's 29 s.
    assert health_took < 2.5 and read_took < 29, (health_took, read_took)
    wait_for(lambda: api.get("/health").status_code == 200, timeout=60)
