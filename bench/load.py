"""A small closed-loop HTTP load generator that runs in worker processes (off the server's GIL)."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
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
    url: str, duration: float = 5.0, processes: int = 3, headers: dict[str, str] | None = None
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


def _buyers(args: tuple[str, str, list[str], list[int]]) -> tuple[list[float], dict[int, int]]:
    base_url, drop_id, tokens, shares = args
    parts = urlsplit(base_url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def buyer(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        body = json.dumps({"drop_id": drop_id, "quantity": 1, "payment_token": "tok_visa"})
        try:
            for _ in range(shares[index]):
                headers = {
                    "Authorization": f"Bearer {tokens[index]}",
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": "application/json",
                }
                started = time.perf_counter()
                conn.request("POST", "/orders", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status] = statuses.get(response.status, 0) + 1
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        list(pool.map(buyer, range(len(tokens))))
    return latencies, statuses


def rush(base_url: str, drop_id: str, tokens: list[str], total: int, processes: int = 2) -> dict[str, Any]:
    """`len(tokens)` concurrent buyers, spread over worker processes, place `total` single-unit orders."""
    shares = [total // len(tokens) + (1 if i < total % len(tokens) else 0) for i in range(len(tokens))]
    jobs = [(base_url, drop_id, tokens[p::processes], shares[p::processes]) for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_noop, range(processes))  # workers up before the clock starts
        started = time.perf_counter()
        results = pool.map(_buyers, jobs)
        wall = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[int, int] = {}
    for _, counts in results:
        for code, n in counts.items():
            statuses[code] = statuses.get(code, 0) + n
    return {
        "buyers": len(tokens),
        "orders": total,
        "seconds": round(wall, 2),
        "orders_per_s": round(total / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def _noop(_: int) -> None:
    return None


def _paced(args: tuple[str, str, list[str], float, float]) -> list[tuple[str | None, float, int]]:
    base_url, drop_id, tokens, rate, seconds = args
    parts = urlsplit(base_url)
    local = threading.local()
    body = json.dumps({"drop_id": drop_id, "quantity": 1, "payment_token": "tok_visa"})
    results: list[tuple[str | None, float, int]] = []
    lock = threading.Lock()

    def place(index: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {
            "Authorization": f"Bearer {tokens[index % len(tokens)]}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        sent = time.time()
        try:
            conn.request("POST", "/orders", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            local.conn = None
            status, payload = 0, b""
        order_id = json.loads(payload).get("order_id") if status == 201 else None
        with lock:
            results.append((order_id, sent, status))

    total = int(rate * seconds)
    began = time.time()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            # Open loop: orders keep arriving at the offered rate however slowly they are answered.
            time.sleep(max(0.0, began + i / rate - time.time()))
            pool.submit(place, i)
    return results


def paced_orders(
    base_url: str, drop_id: str, tokens: list[str], rate: float, seconds: float
) -> list[tuple[str | None, float, int]]:
    """Orders offered at `rate` per second for `seconds` from a worker process: (order_id, sent at, status)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_paced, ((base_url, drop_id, tokens, rate, seconds),))
