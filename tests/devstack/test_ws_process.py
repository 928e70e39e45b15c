"""The WebSocket gateway in a process of its own (devstack.ws_process): its routes still run in this
process's execution environments, with the same answers as the gateway in-process (events, 429, 500, 504,
pushes, $disconnect on stop), and the child ends with it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from devstack.environments import FunctionPool
from devstack.ws_process import GatewayProcess
from tests.devstack.test_environments import DEADLINE, Gate, _until
from tests.devstack.test_ws_gateway import Recorder, _management


@pytest.fixture
def serve() -> Iterator[Callable[..., GatewayProcess]]:
    """Start a gateway process whose routes run `handlers` in pools here; stopped (pools too) at the end."""
    started: list[tuple[GatewayProcess, list[FunctionPool]]] = []

    def start(handlers: dict[str, Any], **options: Any) -> GatewayProcess:
        pools = {
            route: h if isinstance(h, FunctionPool) else FunctionPool(f"ws{route}", h, concurrency=4)
            for route, h in handlers.items()
        }
        gateway = GatewayProcess(**options)
        started.append((gateway, list(pools.values())))
        gateway.start(pools)
        return gateway

    yield start
    for gateway, pools in started:
        gateway.stop()
        for pool in pools:
            pool.stop()


def test_routes_run_here_and_pushes_reach_the_socket(serve) -> None:
    recorder = Recorder()
    gateway = serve(recorder.handlers, stage="dev")
    assert gateway.pid != os.getpid() and gateway.exit_code is None
    management = _management(gateway)
    with connect(f"{gateway.url}?token=abc", open_timeout=DEADLINE) as client:
        connected = recorder.wait_for("$connect", 1, timeout=DEADLINE)[0]
        assert connected["queryStringParameters"] == {"token": "abc"}
        assert connected["requestContext"]["domainName"] == gateway.management_endpoint.split("//")[1]
        connection_id = connected["requestContext"]["connectionId"]
        client.send(json.dumps({"action": "ping", "text": "héllo 🙂"}))
        (message,) = recorder.wait_for("$default", 1, timeout=DEADLINE)
        assert json.loads(message["body"]) == {"action": "ping", "text": "héllo 🙂"}
        # The context is this process's, of the function that runs the route.
        context = recorder.contexts[-1]
        assert context.function_name == "ws$default" and context.get_remaining_time_in_millis() > 0
        management.post_to_connection(ConnectionId=connection_id, Data=b'{"n": 1}')
        assert json.loads(client.recv(timeout=DEADLINE)) == {"n": 1}
        assert management.get_connection(ConnectionId=connection_id)["Identity"]["SourceIp"] == "127.0.0.1"
    (gone,) = recorder.wait_for("$disconnect", 1, timeout=DEADLINE)
    assert gone["requestContext"]["connectionId"] == connection_id
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")


def test_a_refusing_raising_or_throttled_connect_gets_api_gateways_status(serve) -> None:
    def refuse(event: dict[str, Any], context: Any) -> dict[str, Any]:
        user = event["queryStringParameters"]["user"]
        if user == "raises":
            raise ValueError("a bug in $connect")
        return {"statusCode": 403 if user == "stranger" else 200}

    gateway = serve({"$connect": refuse})
    for user, status in (("stranger", 403), ("raises", 500)):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{gateway.url}?user={user}", open_timeout=DEADLINE)
        assert refused.value.response.status_code == status
    with connect(f"{gateway.url}?user=friend", open_timeout=DEADLINE):
        pass

    gate = Gate()
    busy = FunctionPool("ws_connect", gate, concurrency=1, queue_size=0)
    crowded = serve({"$connect": busy})
    try:

        def open_and_close() -> None:
            with connect(crowded.url, open_timeout=DEADLINE):
                pass

        opener = threading.Thread(target=open_and_close)
        opener.start()
        _until(lambda: busy.stats()["busy"] == 1, "the first $connect running")
        with pytest.raises(InvalidStatus) as throttled:
            connect(crowded.url, open_timeout=DEADLINE)
        assert throttled.value.response.status_code == 429
    finally:
        gate.release.set()
    opener.join(DEADLINE)


def test_a_connect_past_the_integration_timeout_is_504_and_is_dropped_here(serve) -> None:
    gate = Gate()
    pool = FunctionPool("ws_connect", gate, concurrency=1)
    gateway = serve({"$connect": pool}, integration_timeout=0.5)
    try:
        with pytest.raises(InvalidStatus) as late:
            connect(gateway.url, open_timeout=DEADLINE)
        assert late.value.response.status_code == 504
        # A second handshake queues behind the held one and times out too: its invocation is cancelled here.
        with pytest.raises(InvalidStatus) as queued:
            connect(gateway.url, open_timeout=DEADLINE)
        assert queued.value.response.status_code == 504
    finally:
        gate.release.set()
    _until(lambda: pool.stats()["busy"] == 0 and pool.stats()["queued"] == 0, "the pool idle")
    assert gate.calls == 1  # the cancelled one never ran


def test_stop_closes_every_socket_with_its_disconnect_and_ends_the_child(serve) -> None:
    recorder = Recorder()
    gateway = serve(recorder.handlers)
    with contextlib.ExitStack() as opened:
        sockets = [opened.enter_context(connect(gateway.url, open_timeout=DEADLINE)) for _ in range(5)]
        recorder.wait_for("$connect", 5, timeout=DEADLINE)
        process_id = gateway.pid
        gateway.stop()
        assert len(recorder.wait_for("$disconnect", 5, timeout=DEADLINE)) == 5
        for ws in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=DEADLINE)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert process_id is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process_id, 0)


def test_a_dead_child_is_reported(serve) -> None:
    gateway = serve(Recorder().handlers)
    assert gateway.pid is not None
    os.kill(gateway.pid, signal.SIGKILL)
    _until(lambda: gateway.exit_code is not None, "the child's exit seen")
    assert gateway.exit_code == -signal.SIGKILL
    gateway.stop()  # still stops cleanly


def test_a_stack_that_stops_before_asking_for_a_gateway_ends_the_child_quietly() -> None:
    # What a start that fails early does (a data folder refused, say): the parent closes its end unused.
    mine, theirs = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, "-m", "devstack.ws_process", "--fd", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    mine.close()
    _, errors = child.communicate(timeout=DEADLINE)
    assert child.returncode == 0 and errors == ""


def test_a_child_whose_dev_stack_dies_ends_on_its_own_without_a_traceback() -> None:
    code = (
        "from devstack.environments import FunctionPool\n"
        "from devstack.ws_process import GatewayProcess\n"
        "import time\n"
        "pools = {r: FunctionPool('ws' + r, lambda e, c: {'statusCode': 200}) for r in ('$connect', '$default', "
        "'$disconnect')}\n"
        "gateway = GatewayProcess()\n"
        "gateway.start(pools)\n"
        "print(gateway.url, gateway.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        url, pid = parent.stdout.readline().split()
        with connect(url, open_timeout=DEADLINE) as ws:
            parent.kill()  # the dev stack dies with a socket open
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=DEADLINE)
        _until(lambda: not _alive(int(pid)), "the orphaned child's exit")
    finally:
        parent.kill()
        _, errors = parent.communicate(timeout=DEADLINE)
    assert "Traceback" not in errors, errors


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An exited child of a dead parent is reaped by init; until then /proc shows it as a zombie.
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
