"""A py-spy profile of a benchmark's measured phase (this process and its children: the embedded AWS
processes, the load clients), summarized as where the samples went.

    with profiled("orders", seconds=20) as report:   # report filled in when the block ends
        ...

Writes bench/results/profile-<name>.txt (py-spy's collapsed stacks) and returns a summary: share of
samples by process and the functions with the most samples of their own. Off unless
`LIVEDROP_BENCH_PROFILE=1` (`make bench PROFILE=1`): sampling the stack's 150 threads 50 times a second
takes CPU from what it measures (2,000 orders at 32 buyers: 19.0 orders/s profiled, 30.2 not, same
code and hour), so a profiled run's figures are for finding where time goes, not for publishing.
Skipped (an empty summary) where py-spy is not installed or may not attach.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_PROCESS = re.compile(r'^process \d+:"(?P<cmd>[^"]*)"')


def _py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def _role(command: str) -> str:
    if "devstack.moto_backend" in command:
        return "embedded AWS: " + ("DynamoDB" if "--group dynamodb" in command else "messaging")
    if "multiprocessing" in command or "spawn" in command:
        return "load client"
    return "dev stack (gateways, functions, pumps)"


def summarize(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Share of samples by process role, and the `top` functions by samples of their own."""
    by_role: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # A child's stacks hang under its parent's "process" frame: the innermost one is the sampled process.
        processes = [m for m in map(_PROCESS.match, frames) if m]
        by_role[_role(processes[-1].group("cmd") if processes else "")] += count
        leaf = frames[-1]
        # "function (path/to/module.py:line)" -> "function (module.py)"
        leaf = re.sub(r"\((?:[^()]*/)?([^/():]+\.py):\d+\)", r"(\1)", leaf)
        by_leaf[leaf] += count
        total += count
    if not total:
        return {}
    return {
        "samples": total,
        "by_process_pct": {role: round(100 * n / total, 1) for role, n in by_role.most_common()},
        "top_self_pct": {name: round(100 * n / total, 1) for name, n in by_leaf.most_common(top)},
    }


@contextmanager
def profiled(name: str, seconds: float, rate: int = 50) -> Iterator[dict[str, Any]]:
    """Profile this process tree for up to `seconds` while the block runs; the dict gets the summary."""
    report: dict[str, Any] = {}
    tool = _py_spy()
    if tool is None or os.environ.get("LIVEDROP_BENCH_PROFILE", "0") != "1":
        yield report
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"profile-{name}.txt"
    command = [tool, "record", "--pid", str(os.getpid()), "--subprocesses", "--format", "raw"]
    command += ["--rate", str(rate), "--duration", str(int(seconds)), "--output", str(out), "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield report
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        try:
            _, errors = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            errors = ""
        if out.exists():
            report.update(summarize(out.read_text()))
            report["file"] = str(out.relative_to(RESULTS.parent.parent))
        else:
            report["skipped"] = (errors or "py-spy wrote nothing").strip().splitlines()[-1:]
