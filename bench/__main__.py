"""`make bench`: every benchmark in one run, each against a fresh stack of its own.

Each benchmark runs in a process of its own and writes bench/results/<name>.json; then this writes
bench/results/latest.json with all of them, bench/results/latest.md (a Markdown summary) and
bench/results/latency.png. bench/results/ is not tracked: `make bench-publish` (bench.publish) is the
explicit step that copies a run's figures to bench/published/ and docs/benchmarks.md.

The first Ctrl-C stops the run: the benchmark running then is stopped with its processes (it runs in a
session of its own, so the terminal's Ctrl-C reaches only this runner), and the report is written with
the benchmarks that finished, naming the one interrupted and those not run (exit status 130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# Run order: the raw backend first, so every later figure has its limit measured in the same run.
BENCHMARKS = ("backend", "reads", "orders", "notifications", "sellout", "calls", "coldstart", "hot_drop")
# After Ctrl-C, how long a benchmark's processes get to end on SIGTERM before they are killed.
STOP_GRACE_S = 5.0


def _summary(results: dict[str, Any]) -> list[str]:
    lines = ["| benchmark | figure | value |", "|---|---|---|"]
    for name, result in results.items():
        for key, value in _flatten(result.get("summary") or _default_summary(name, result)):
            lines.append(f"| {name} | {key} | {value} |")
    return lines


def _default_summary(name: str, result: dict[str, Any]) -> dict[str, Any]:
    if name == "orders":
        figures = {
            f"{level['buyers']} buyers: orders/s, p50 ms, p99 ms, ratio to raw tx/s": (
                f"{level['orders_per_s']}, {level['p50_ms']}, {level['p99_ms']}, {level['ratio_to_raw']}"
            )
            for level in result.get("levels", [])
        }
        figures["zero oversell"] = result.get("check", {}).get("zero_oversell")
        return figures
    if name == "notifications":
        started = result.get("drop_started", {})
        confirmed = result.get("order_confirmed", {})
        delay, post = started.get("delay_from_start_time", {}), confirmed.get("delay_from_post", {})
        return {
            f"drop_started to {started.get('followers')} followers: p50 / p99 / max ms": (
                f"{delay.get('p50_ms')} / {delay.get('p99_ms')} / {delay.get('max_ms')}"
            ),
            f"order -> order_confirmed at {confirmed.get('offered_rate_per_s')} orders/s: p50 / p99 ms": (
                f"{post.get('p50_ms')} / {post.get('p99_ms')}"
            ),
        }
    if name == "backend":
        figures: dict[str, Any] = {}
        for table in result.get("tables", []):
            for op in ("transact_write_1t", "transact_write_8t", "get_item_1t", "get_item_8t"):
                if op in table:
                    figures[f"{op} @ {table['items']} items (ops/s)"] = table[op]["ops_per_s"]
        return figures
    return {k: v for k, v in result.items() if isinstance(v, int | float | str)}


def _flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    flat: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            flat += _flatten(value, f"{prefix}{key}.")
        else:
            flat.append((f"{prefix}{key}", value))
    return flat


def _plot(results: dict[str, Any], path: Path) -> None:
    """p50 and p99 latency of every measured operation, one bar pair each, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[tuple[str, float, float]] = []
    reads = results.get("reads", {})
    for kind in ("cached", "uncached"):
        if kind in reads:
            rows.append((f"GET /drops/{{id}} {kind}", reads[kind]["p50_ms"], reads[kind]["p99_ms"]))
    for level in results.get("orders", {}).get("levels", []):
        rows.append((f"POST /orders, {level['buyers']} buyers", level["p50_ms"], level["p99_ms"]))
    notifications = results.get("notifications", {})
    for key, label, field in (
        ("drop_started", "drop_started to followers", "delay_from_start_time"),
        ("order_confirmed", "order -> order_confirmed", "delay_from_post"),
    ):
        figures = notifications.get(key, {}).get(field)
        if figures:
            rows.append((label, figures["p50_ms"], figures["p99_ms"]))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.5))
    positions = range(len(rows))
    ax.barh([p + 0.2 for p in positions], [r[1] for r in rows], height=0.4, label="p50")
    ax.barh([p - 0.2 for p in positions], [r[2] for r in rows], height=0.4, label="p99")
    ax.set_yticks(list(positions), [r[0] for r in rows])
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_title("LiveDrop dev stack latency (2 cores, embedded AWS)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# Models that read a run's figures instead of running one: `python -m bench cost|plan [flags]`.
MODELS = ("cost", "plan")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MODELS:
        import importlib

        model: Any = importlib.import_module(f"bench.{argv[0]}")
        return int(model.main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)
    root = RESULTS.parent.parent
    return run(args.names, RESULTS, lambda name: [sys.executable, "-m", f"bench.{name}"], cwd=root)


def run(names: Sequence[str], results_dir: Path, command: Callable[[str], list[str]], cwd: Path | None = None) -> int:
    """Run each benchmark (`command(name)`, which writes `results_dir/<name>.json`) one after another,
    then write the report; on the first Ctrl-C, stop the running one and report what finished (130)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    interrupted: str | None = None
    for name in names:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        # A process each: a dev stack binds chalicelib to its endpoint once per process.
        child = subprocess.Popen(command(name), cwd=cwd, start_new_session=True)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            interrupted = name
            # The report is written whatever else the user presses meanwhile.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print(f"\n== interrupted during {name}: stopping it, writing what was measured", flush=True)
            _stop(child)
            break
        if code != 0:
            raise subprocess.CalledProcessError(code, child.args)
        results[name] = json.loads((results_dir / f"{name}.json").read_text())
        print(f"== {name} done in {time.monotonic() - started:.1f} s", flush=True)
    latest: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": results,
    }
    if interrupted is not None:
        latest["interrupted"] = {"during": interrupted, "not_run": list(names[names.index(interrupted) + 1 :])}
    (results_dir / "latest.json").write_text(json.dumps(latest, indent=2) + "\n")
    if interrupted is None:
        _plot(results, results_dir / "latency.png")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = f"Measured {latest['when']} on {latest['machine']['cpus']} cores (load average at the end: {load})."
    if interrupted is not None:
        header += f" Interrupted during {interrupted}: its figures and those of the benchmarks after it are missing."
    table = "\n".join([header, "", *_summary(results)])
    (results_dir / "latest.md").write_text(table + "\n")
    print(table)
    return 130 if interrupted is not None else 0


def _stop(child: subprocess.Popen[bytes]) -> None:
    """End a benchmark's process and everything it started in its session: SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        # What it started and left behind in its session goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        return


if __name__ == "__main__":
    raise SystemExit(main())
