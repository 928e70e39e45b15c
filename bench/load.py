"""A small closed-loop HTTP load generator that runs in worker processes (off the server's GIL)."""

from __future__ import annotations

import http.client
import multiprocessing
import time
from typing import Any
from urllib.parse import urlsplit


def _worker(args: tuple[str, str, dict[str, str], float, int]) -> list[float]:
    url, method, headers, duration, connections = args
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    deadline = time.monotonic() + duration
    conns = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=30) for _ in range(connections)]
    try:
        while time.monotonic() < deadline:
            for conn in conns:
                started = time.perf_counter()
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 500:
                    raise RuntimeError(f"{response.status} from {url}")
                latencies.append(time.perf_counter() - started)
    finally:
        for conn in conns:
            conn.close()
    return latencies


def hammer(
    url: str, duration: float = 5.0, processes: int = 2, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """GET `url` from `processes` worker processes for `duration` seconds; requests/s and latency."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        started = time.monotonic()
        results = pool.map(_worker, [(url, "GET", headers or {}, duration, 1)] * processes)
        elapsed = time.monotonic() - started
    latencies = sorted(x for r in results for x in r)
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / min(elapsed, duration + 0.5), 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    """The pct-th percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]
