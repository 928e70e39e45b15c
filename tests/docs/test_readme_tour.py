"""The README's API tour, run as written against a fresh `python -m devstack`: every command of its
`bash` blocks, every response checked against the `# →` line under it, so the README cannot rot.

A `# →` line reads `# → STATUS [Header: value] [JSON]`. In its JSON, `…` stands for any value, `[…]`
for any list, and a trailing `, …` in an object for more keys; every other key and value must be
exactly what the API answered. `# → frames: a, b` says the command printed WebSocket frames of
those types (and no error frame).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import spawn_devstack

# Slow: a fresh dev stack of its own (make test starts files with slow tests first).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TOUR_HEADING = "## A tour of the API"
README_HTTP, README_WS = "127.0.0.1:8000", "127.0.0.1:8001"
EXPECTATION = re.compile(r"^# → (?:(\d{3})(?: ([A-Za-z][\w-]*): (\S+))?(?: (\{.*\}))?|frames: (.+))\s*$")
ANY = "…"
MORE_KEYS = "…more"


@dataclass
class Step:
    number: int
    code: str
    status: int | None = None
    header: tuple[str, str] | None = None
    body: Any = None
    frames: list[str] = field(default_factory=list)

    @property
    def checked(self) -> bool:
        return self.status is not None or bool(self.frames)


def tour_blocks(markdown: str) -> list[str]:
    """The fenced `bash` blocks of the tour section, in order."""
    start = markdown.index(TOUR_HEADING)
    following = markdown.find("\n## ", start + len(TOUR_HEADING))
    section = markdown[start : following if following != -1 else len(markdown)]
    return re.findall(r"^```bash\n(.*?)^```", section, flags=re.S | re.M)


def example_json(text: str) -> Any:
    """A `# →` line's JSON with its `…` placeholders made into values the matcher understands."""
    text = re.sub(r",\s*…\s*}", f', "{MORE_KEYS}": "{ANY}"}}', text)
    out, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            escaped = char == "\\" and not escaped
            in_string = not (char == '"' and not escaped)
        elif char == '"':
            in_string = True
        elif char == ANY:
            out.append(f'"{ANY}"')
            continue
        out.append(char)
    return json.loads("".join(out))


def matches(example: Any, actual: Any) -> bool:
    if example == ANY:
        return True
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return False
        keys = set(example) - {MORE_KEYS}
        if MORE_KEYS in example and not keys <= set(actual) or MORE_KEYS not in example and keys != set(actual):
            return False
        return all(matches(example[key], actual[key]) for key in keys)
    if isinstance(example, list):
        if example == [ANY]:
            return isinstance(actual, list)
        return isinstance(actual, list) and len(example) == len(actual) and all(map(matches, example, actual))
    return bool(example == actual)


def tour_steps(blocks: list[str]) -> list[Step]:
    """Each command (with the lines before it) up to the `# →` line that says what it answers."""
    steps: list[Step] = []
    for block in blocks:
        pending: list[str] = []
        for line in block.splitlines():
            found = EXPECTATION.match(line)
            if not found:
                pending.append(line)
                continue
            step = Step(len(steps) + 1, "\n".join(pending))
            status, header, value, body, frames = found.groups()
            if frames:
                step.frames = [kind.strip() for kind in frames.split(",")]
            else:
                step.status = int(status)
                step.header = (header, value) if header else None
                step.body = example_json(body) if body else None
            steps.append(step)
            pending = []
        if pending:
            steps.append(Step(len(steps) + 1, "\n".join(pending)))
    return steps


def test_the_tour_checks_every_command_it_shows() -> None:
    steps = tour_steps(tour_blocks(README.read_text()))
    assert len([s for s in steps if s.checked]) >= 20
    for step in steps:
        if not step.checked:
            assert "curl" not in step.code, f"a command without a `# →` line under it:\n{step.code}"
    assert "jq " not in "\n".join(s.code for s in steps), "the tour may only use what a newcomer has"


def test_the_example_matcher_is_strict_where_the_readme_is_exact() -> None:
    example = example_json('{"id": "…", "items": […], "status": "live", "error": {"code": "x", …}}')
    assert matches(example, {"id": "a", "items": [1], "status": "live", "error": {"code": "x", "message": "m"}})
    assert not matches(example, {"id": "a", "items": [], "status": "ended", "error": {"code": "x"}})
    assert not matches(example, {"id": "a", "items": [], "status": "live", "error": {"code": "y"}})
    assert not matches(example, {"id": "a", "items": [], "status": "live", "error": {"code": "x"}, "extra": 1})


# --- running it -----------------------------------------------------------------------------------

# Each curl of the tour also leaves its verbose trace (status line, headers) and its output in the log
# folder, numbered, with the step it belongs to.
PRELUDE = r"""
set -eu
curl() {
  local n=$(( $(cat "$TOUR_LOG/count") + 1 ))
  echo "$n" > "$TOUR_LOG/count"
  echo "$TOUR_STEP" > "$TOUR_LOG/$n.step"
  command curl -v --stderr "$TOUR_LOG/$n.trace" "$@" | tee "$TOUR_LOG/$n.out"
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script(steps: list[Step], http_port: int, ws_port: int) -> str:
    parts = [PRELUDE]
    for step in steps:
        # curl's output has no final newline: the marker starts a line of its own.
        parts.append(f"TOUR_STEP={step.number}\nprintf '\\n@@step {step.number}\\n'\n{step.code}\n")
    return "".join(parts).replace(README_HTTP, f"127.0.0.1:{http_port}").replace(README_WS, f"127.0.0.1:{ws_port}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


def _responses(log: Path) -> dict[int, list[Response]]:
    by_step: dict[int, list[Response]] = {}
    for number in range(1, int((log / "count").read_text()) + 1):
        trace = (log / f"{number}.trace").read_text(errors="replace").splitlines()
        status_lines = [i for i, line in enumerate(trace) if re.match(r"^< HTTP/\S+ \d{3}", line)]
        assert status_lines, f"curl call {number} got no response:\n" + "\n".join(trace[-5:])
        last = status_lines[-1]
        headers = {}
        for line in trace[last + 1 :]:
            if not line.startswith("< ") or not line[2:].strip():
                break
            name, _, value = line[2:].partition(":")
            headers[name.strip().lower()] = value.strip()
        out = (log / f"{number}.out").read_text()
        if out.startswith("HTTP/"):  # curl -i: the headers came out too
            out = re.split(r"\r?\n\r?\n", out, maxsplit=1)[-1]
        step = int((log / f"{number}.step").read_text())
        by_step.setdefault(step, []).append(Response(int(trace[last].split()[2]), headers, out))
    return by_step


def _step_output(stdout: str) -> dict[int, list[str]]:
    lines: dict[int, list[str]] = {}
    current = 0
    for line in stdout.splitlines():
        found = re.fullmatch(r"@@step (\d+)", line)
        if found:
            current = int(found.group(1))
        else:
            lines.setdefault(current, []).append(line)
    return lines


def _start_devstack(http_port: int, ws_port: int, output: list[str]) -> subprocess.Popen[str]:
    """Start the dev stack; every line it prints is appended to `output`, for a failure's report."""
    process = spawn_devstack(http_port, ws_port)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if line == "LiveDrop dev stack ready":
            return process
    process.kill()
    process.wait()
    pytest.fail("the dev stack did not start:\n" + "\n".join(seen))


def _ensure_curl() -> None:
    """The tour's one requirement beyond Python: curl, installed with apt-get when missing (CI runs as root
    on a fresh machine, like the browser tests' chromium)."""
    if shutil.which("curl"):
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("the README's tour needs curl, and it cannot be installed here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "curl"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
    assert shutil.which("curl"), "apt-get installed curl but it is not on PATH"


def test_the_readme_tour_works_as_written(tmp_path: Path) -> None:
    _ensure_curl()
    for tool in ("bash", "python3"):
        assert shutil.which(tool), f"the README's tour needs {tool}"
    steps = tour_steps(tour_blocks(README.read_text()))
    http_port, ws_port = _free_port(), _free_port()
    log = tmp_path / "log"
    log.mkdir()
    (log / "count").write_text("0")
    stack_output: list[str] = []
    stack = _start_devstack(http_port, ws_port, stack_output)
    try:
        ran = subprocess.run(
            ["bash", "-c", _script(steps, http_port, ws_port)],
            cwd=ROOT,
            env={**os.environ, "TOUR_LOG": str(log)},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()
    transcript = (
        f"stdout:\n{ran.stdout[-4000:]}\nstderr:\n{ran.stderr[-4000:]}\n"
        "the dev stack printed (last 60 lines):\n" + "\n".join(stack_output[-60:])
    )
    assert ran.returncode == 0, transcript
    responses, output = _responses(log), _step_output(ran.stdout)
    for step in steps:
        if step.status is not None:
            assert responses.get(step.number), f"step {step.number} made no request:\n{step.code}"
            got = responses[step.number][-1]
            where = f"step {step.number}:\n{step.code}\nanswered {got.status} {got.headers} {got.body}"
            assert got.status == step.status, where
            if step.header:
                assert got.headers.get(step.header[0].lower()) == step.header[1], where
            if step.body is not None:
                assert matches(step.body, json.loads(got.body)), where
        if step.frames:
            frames = [json.loads(line) for line in output.get(step.number, []) if line.startswith("{")]
            kinds = [frame.get("type") for frame in frames]
            assert set(step.frames) <= set(kinds) and "error" not in kinds, f"step {step.number} printed {kinds}"
