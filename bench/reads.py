"""Reads through the REST gateway, measured with wrk (a C load generator, so the load does not compete
with the server for the GIL): the gateway's own `/health` rate, cached `GET /drops/{id}` over keep-alive
connections and with a new connection per request (`Connection: close`, as browsers' first requests,
scripts and curl do), then uncached reads and the embedded backend's raw GetItem/s as their limit.

The targets are ratios measured in the same run, so they hold on any machine:
- a new connection per request >= 0.8x keep-alive reads;
- cached `GET /drops/{id}` >= 0.9x the `/health` rate.

wrk comes from the Debian package `wrk`: when it is missing and this runs as root with apt-get, it is
installed; otherwise the bench stops and says how to install it.

`python -m bench.reads` prints the figures and writes bench/results/reads.json.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench.shop import account, live_drop, write_result
from chalicelib.domain import catalog
from chalicelib.schema.models import Drop

DURATION = 3  # seconds per wrk run
ROUNDS = 3  # health, keep-alive and new-connection runs take turns this many times
CONNECTIONS = 32
THREADS = 1  # one wrk thread drives far more than the server serves, and leaves the server the other core
TARGET_NEW_CONNECTION_RATIO = 0.8
TARGET_CACHED_TO_HEALTH_RATIO = 0.9


def require_wrk() -> str:
    """The path of wrk, installing the Debian package first when it is missing and that is possible."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("wrk is missing: installing the Debian package `wrk`", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

        def apt_get(*args: str) -> int:
            return subprocess.run([apt, *args], check=False, stdout=subprocess.DEVNULL, env=env).returncode

        if apt_get("install", "-y", "-q", "wrk") != 0:  # the package lists may be missing or stale
            apt_get("update", "-q")
            apt_get("install", "-y", "-q", "wrk")
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("bench.reads needs wrk: install it with `apt-get install wrk` (Debian/Ubuntu) and run again")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)], 2)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles and error counts from `wrk --latency` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rate or not total:
        raise ValueError(f"unexpected wrk output:\n{output}")
    figures: dict[str, Any] = {"requests": int(total.group(1)), "per_s": round(float(rate.group(1)), 1)}
    for pct in ("50", "90", "99"):
        found = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", output, re.MULTILINE)
        if found:
            figures[f"p{pct}_ms"] = _ms(found.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    figures["socket_errors"] = sum(int(n) for n in sockets.groups()) if sockets else 0
    return figures


def wrk(url: str, *, close: bool = False, duration: int = DURATION, connections: int = CONNECTIONS) -> dict[str, Any]:
    """One wrk run against `url`; `close` sends `Connection: close`, so every request opens a new connection."""
    command = [require_wrk(), f"-t{THREADS}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if close:
        command += ["-H", "Connection: close"]
    done = subprocess.run([*command, url], check=True, capture_output=True, text=True)
    return parse_wrk(done.stdout)


def interleaved(runs: list[tuple[str, bool]], rounds: int) -> list[dict[str, Any]]:
    """Each (url, close) measured `rounds` times in turn, so a busy neighbour on a shared machine weighs on
    all of them alike; per figure the median round (ratios of figures from one run are what count)."""
    measured: list[list[dict[str, Any]]] = [[] for _ in runs]
    for _ in range(rounds):
        for index, (url, close) in enumerate(runs):
            measured[index].append(wrk(url, close=close))
    return [_median(rounds_of_one) for rounds_of_one in measured]


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    middle = sorted(results, key=lambda r: r["per_s"])[len(results) // 2]
    merged = {key: sorted(r[key] for r in results)[len(results) // 2] for key in middle if key.startswith("p")}
    return {
        **middle,
        **merged,
        "requests": sum(r["requests"] for r in results),
        "non_2xx": sum(r["non_2xx"] for r in results),
        "socket_errors": sum(r["socket_errors"] for r in results),
        "rounds_per_s": [r["per_s"] for r in results],
    }


def _raw_get_item_rate(endpoint: str, table: str, key: dict[str, Any], duration: float) -> float:
    import boto3

    from devstack.identity import client_kwargs

    client = boto3.client("dynamodb", **client_kwargs(endpoint))
    done = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        client.get_item(TableName=table, Key=key)
        done += 1
    return round(done / duration, 1)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def run(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Start a fresh dev stack, measure, stop it; returns and writes the figures."""
    require_wrk()
    from devstack.stack import DevStack

    with DevStack(http_port=0, ws_port=0) as stack:
        base, session = stack.rest_url, requests.Session()
        _, _, drop = live_drop(session, base, account(session, base, "Bench"), stock=1000)
        url = f"{base}/drops/{drop}"

        session.get(url).raise_for_status()  # fills the cache
        wrk(url, duration=1)  # warms the gateway and the api function's environments
        health, cached, cached_new_connection = interleaved(
            [(f"{base}/health", False), (url, False), (url, True)], ROUNDS
        )
        ttl = catalog.drop_cache.ttl
        catalog.drop_cache.ttl = 0  # every read goes to DynamoDB
        try:
            uncached = wrk(url)
        finally:
            catalog.drop_cache.ttl = ttl
        raw = _raw_get_item_rate(stack.aws.endpoint, Drop.Meta.table_name, {"drop_id": {"S": drop}}, 3.0)
        environments = {name: pool.stats() for name, pool in getattr(stack, "pools", {}).items()}
    new_connection_ratio = _ratio(cached_new_connection["per_s"], cached["per_s"])
    cached_to_health = _ratio(cached["per_s"], health["per_s"])
    result = {
        "benchmark": "reads",
        "tool": f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s, {ROUNDS} interleaved rounds, median",
        "health": health,
        "cached": cached,
        "cached_new_connection": cached_new_connection,
        "uncached": uncached,
        "raw_get_item_per_s": raw,
        "new_connection_to_keep_alive_ratio": new_connection_ratio,
        "cached_to_health_ratio": cached_to_health,
        "uncached_to_raw_ratio": _ratio(uncached["per_s"], raw),
        "targets": {
            "new connection >= 0.8x keep-alive": (new_connection_ratio or 0) >= TARGET_NEW_CONNECTION_RATIO,
            "cached read >= 0.9x /health": (cached_to_health or 0) >= TARGET_CACHED_TO_HEALTH_RATIO,
        },
        "environments": environments,
        "summary": {
            "GET /health (reads/s)": health["per_s"],
            "cached GET /drops/{id}, keep-alive (reads/s)": cached["per_s"],
            "cached p99 (ms)": cached.get("p99_ms"),
            "cached GET /drops/{id}, new connection each (reads/s)": cached_new_connection["per_s"],
            "new connection p99 (ms)": cached_new_connection.get("p99_ms"),
            "new connection / keep-alive (target >= 0.8)": new_connection_ratio,
            "cached / health (target >= 0.9)": cached_to_health,
            "uncached GET /drops/{id} (reads/s)": uncached["per_s"],
            "raw GetItem/s (limit)": raw,
            "uncached / raw": _ratio(uncached["per_s"], raw),
        },
    }
    return write_result(results_dir, "reads", result)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results")
