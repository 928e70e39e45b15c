"""`python -m devstack` and `make dev` as a newcomer meets them: ports chosen on the command line, a busy
port explained in one line, and Ctrl-C at any moment stopping everything quietly."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.support import child_pids

ROOT = Path(__file__).resolve().parents[2]
READY = "LiveDrop dev stack ready"
# Generous: a start-up takes seconds here and must still pass on a machine several times slower.
START_DEADLINE = 120.0
STOP_DEADLINE = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevstackProcess:
    """`python -m devstack` in a session of its own (as a terminal runs it), its output read line by line."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, text: str, deadline: float = START_DEADLINE) -> bool:
        """Read output until a line contains `text` (True) or the output ends or the deadline passes (False)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.lines.append(line)
            if text in line:
                return True
        return False

    def ctrl_c(self) -> None:
        """SIGINT to the whole foreground group, as a terminal's Ctrl-C sends it."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, deadline: float = STOP_DEADLINE) -> int:
        """Wait for the exit; the rest of the output is read into `lines`."""
        code = self.process.wait(timeout=deadline)
        self.wait_for_line("\0", deadline=10.0)  # drains until the end of the output
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def devstack(*args: str) -> Iterator[DevstackProcess]:
    started = DevstackProcess(*args)
    try:
        yield started
    finally:
        started.kill()


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "zombie" in status


def _poll(condition: Callable[[], bool], deadline: float) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- a busy port ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "variable", "what"), [("--http-port", "HTTP_PORT", "REST"), ("--ws-port", "WS_PORT", "WebSocket")]
)
def test_a_busy_port_is_one_line_naming_it_and_how_to_choose_another(flag: str, variable: str, what: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        other_flag = "--ws-port" if flag == "--http-port" else "--http-port"
        result = subprocess.run(
            [sys.executable, "-m", "devstack", flag, str(busy), other_flag, "0", "--no-demo"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=START_DEADLINE,
        )
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(busy) in lines[0] and what in lines[0] and "in use" in lines[0]
    assert f"make dev {variable}=" in lines[0] and flag in lines[0]


def test_the_same_port_for_both_gateways_is_refused_in_one_line() -> None:
    port = _free_port()
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "--http-port", str(port), "--ws-port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_DEADLINE,
    )
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1 and str(port) in result.stderr, result.stderr


def test_make_dev_passes_the_ports_and_flags_to_the_dev_stack() -> None:
    planned = _make_plan("dev", "HTTP_PORT=9100", "WS_PORT=9101", "ARGS=--no-demo")
    assert planned.returncode == 0, planned.stderr
    command = [line for line in planned.stdout.splitlines() if "-m devstack" in line]
    expected = r"-m devstack --http-port 9100 --ws-port 9101\s+--no-demo$"
    assert command and re.search(expected, command[-1]), planned.stdout


def _make_plan(*args: str) -> subprocess.CompletedProcess[str]:
    """What `make ARGS` would run (-n runs nothing), as a top-level make prints it even under `make test`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    command = ["make", "-n", "--no-print-directory", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


# --- Ctrl-C at any moment -------------------------------------------------------------------------


def _assert_stopped_quietly(stack: DevstackProcess, children: set[int]) -> None:
    assert stack.finish() == 0, stack.output
    assert "Traceback" not in stack.output, stack.output
    assert "did not start" not in stack.output, stack.output
    for child in children:
        assert _poll(lambda child=child: _gone(child), STOP_DEADLINE), f"child {child} outlived the dev stack"


def _catches_sigterm(pid: int) -> bool:
    """Whether the process handles SIGTERM: the first thing `python -m devstack` does, before any import."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    found = re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M)
    return found is not None and bool(int(found.group(1), 16) & (1 << (signal.SIGTERM - 1)))


def test_ctrl_c_as_soon_as_the_dev_stack_runs_exits_quietly() -> None:
    with devstack("--http-port", "0", "--ws-port", "0") as stack:
        assert _poll(lambda: _catches_sigterm(stack.process.pid), START_DEADLINE), "the dev stack never ran"
        stack.ctrl_c()
        _assert_stopped_quietly(stack, set())
        assert READY not in stack.output


def test_ctrl_c_while_the_embedded_aws_starts_stops_it_quietly() -> None:
    with devstack("--http-port", "0", "--ws-port", "0") as stack:
        assert _poll(lambda: bool(child_pids(stack.process.pid)), START_DEADLINE), "no embedded AWS child appeared"
        children = child_pids(stack.process.pid)
        stack.ctrl_c()
        _assert_stopped_quietly(stack, children)
        assert READY not in stack.output


def test_ctrl_c_while_the_demo_data_loads_stops_everything_quietly() -> None:
    http_port = _free_port()
    with devstack("--http-port", str(http_port), "--ws-port", "0") as stack:
        # The REST gateway listens before the demo data goes in through it, and the ready line comes after.
        assert _poll(lambda: _listening(http_port), START_DEADLINE), "the REST gateway never listened"
        children = child_pids(stack.process.pid)
        stack.ctrl_c()
        _assert_stopped_quietly(stack, children)
        assert not _listening(http_port)


def test_a_ctrl_c_python_cannot_raise_is_not_printed_and_still_stops(capfd) -> None:
    # A signal handler runs between any two bytecodes, so a start-up's KeyboardInterrupt can land in a
    # weakref callback, where Python prints "Exception ignored ... Traceback" and runs on (CI saw it).
    import gc
    import weakref

    from devstack.__main__ import _Interrupts

    class Loaded:
        pass

    interrupts = _Interrupts()
    previous = sys.unraisablehook
    sys.unraisablehook = interrupts.unraisable
    try:
        loaded = Loaded()
        ref = weakref.ref(loaded, lambda _: interrupts(signal.SIGINT, None))
        del loaded
        gc.collect()
        assert ref() is None and interrupts.stopping.is_set()  # main()'s loop sees it and stops
        assert "Traceback" not in capfd.readouterr().err
        failing = Loaded()
        ref = weakref.ref(failing, lambda _: 1 / 0)  # any other error is still told
        del failing
        gc.collect()
        assert "ZeroDivisionError" in capfd.readouterr().err
    finally:
        sys.unraisablehook = previous


def test_ctrl_c_after_ready_stops_everything_quietly() -> None:
    http_port = _free_port()
    with devstack("--http-port", str(http_port), "--ws-port", "0") as stack:
        assert stack.wait_for_line(READY), stack.output
        children = child_pids(stack.process.pid)
        assert children, "the embedded AWS runs as a child process"
        stack.ctrl_c()
        _assert_stopped_quietly(stack, children)
        assert "stopping" in stack.output.splitlines()[-1]
        assert not _listening(http_port)


def test_the_first_make_dev_says_what_it_installs_and_lets_pip_show_its_progress() -> None:
    # -W: plan the run as if the requirements had just changed, as on a fresh clone; -n runs nothing.
    planned = _make_plan("-W", "requirements.txt", "dev")
    assert planned.returncode == 0, planned.stderr
    installs = [line for line in planned.stdout.splitlines() if "pip install" in line]
    assert installs and not any("--quiet" in line or " -q " in line for line in installs), planned.stdout
    assert "installing" in planned.stdout and "-m devstack" in planned.stdout.splitlines()[-1]


def test_the_embedded_aws_does_not_outlive_a_killed_dev_stack() -> None:
    http_port = _free_port()
    with devstack("--http-port", str(http_port), "--ws-port", "0", "--no-demo") as stack:
        # The REST gateway listens only once the embedded AWS serves.
        assert _poll(lambda: _listening(http_port), START_DEADLINE), "the REST gateway never listened"
        children = child_pids(stack.process.pid)
        assert children, "the embedded AWS runs as a child process"
        stack.process.kill()  # the dev stack alone, as an OOM killer or `kill -9` would
        stack.process.wait()
        for child in children:
            assert _poll(lambda child=child: _gone(child), STOP_DEADLINE), f"child {child} outlived the dev stack"
