"""`make bench`: every benchmark in one run, each against a fresh stack of its own.

Each benchmark runs in a process of its own and writes bench/results/<name>.json; then this writes
bench/results/latest.json with all of them, bench/results/latest.md (a Markdown summary) and
bench/results/latency.png. bench/results/ is not tracked: `make bench-publish` (bench.publish) is the
explicit step that copies a run's figures to bench/published/ and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# Run order: the raw backend first, so every later figure has its limit measured in the same run.
BENCHMARKS = ("backend", "reads", "orders", "notifications", "calls", "coldstart", "hot_drop")


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
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in args.names:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        # A process each: a dev stack binds chalicelib to its endpoint once per process.
        subprocess.run([sys.executable, "-m", f"bench.{name}"], check=True, cwd=RESULTS.parent.parent)
        results[name] = json.loads((RESULTS / f"{name}.json").read_text())
        print(f"== {name} done in {time.monotonic() - started:.1f} s", flush=True)
    latest = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "results": results,
    }
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2) + "\n")
    _plot(results, RESULTS / "latency.png")
    load = ", ".join(f"{x:.1f}" for x in __import__("os").getloadavg())
    header = f"Measured {latest['when']} on {latest['machine']['cpus']} cores (load average at the end: {load})."
    table = "\n".join([header, "", *_summary(results)])
    (RESULTS / "latest.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
