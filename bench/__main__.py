"""`make bench`: every benchmark in one run, each against a fresh stack of its own.

Writes bench/results/<name>.json per benchmark, bench/results/latest.json with all of them, and
bench/results/latest.md, a Markdown summary that the README shows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# Run order: the raw backend first, so every later figure has its limit measured in the same run.
BENCHMARKS = ("backend", "orders", "notifications")


def _summary(results: dict[str, Any]) -> list[str]:
    lines = ["| benchmark | figure | value |", "|---|---|---|"]
    for name, result in results.items():
        for key, value in _flatten(result.get("summary") or _default_summary(name, result)):
            lines.append(f"| {name} | {key} | {value} |")
    return lines


def _default_summary(name: str, result: dict[str, Any]) -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in args.names:
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        print(f"== {name}", flush=True)
        results[name] = module.run(RESULTS)
        print(f"== {name} done in {time.monotonic() - started:.1f} s", flush=True)
    latest = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "results": results,
    }
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2) + "\n")
    table = "\n".join([f"Measured {latest['when']} on {latest['machine']['cpus']} cores.", "", *_summary(results)])
    (RESULTS / "latest.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
