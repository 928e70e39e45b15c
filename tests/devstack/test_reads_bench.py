"""bench/reads.py reads wrk's report right, and wrk's clients are served with and without keep-alive."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from chalice import Chalice

from bench.reads import _median, parse_wrk, wrk
from devstack.environments import FunctionPool
from devstack.http_gateway import HttpGateway

REPORT = """Running 1s test @ http://127.0.0.1:40000/ping
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.50us    1.20ms  15.02ms   95.10%
    Req/Sec     5.01k   512.33     5.60k    80.00%
  Latency Distribution
     50%  610.00us
     75%  700.00us
     90%    0.98ms
     99%    1.02s
  4987 requests in 1.00s, 497.12KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   4986.20
Transfer/sec:    497.05KB
"""


def test_wrk_report_is_read_into_rates_percentiles_and_errors() -> None:
    assert parse_wrk(REPORT) == {
        "requests": 4987,
        "per_s": 4986.2,
        "p50_ms": 0.61,
        "p90_ms": 0.98,
        "p99_ms": 1020.0,
        "non_2xx": 7,
        "socket_errors": 3,
    }
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to 127.0.0.1:9 Connection refused")


def test_rounds_are_summarised_by_their_median() -> None:
    rounds = [
        {"requests": 10, "per_s": 300.0, "p50_ms": 3.0, "p99_ms": 9.0, "non_2xx": 0, "socket_errors": 1},
        {"requests": 30, "per_s": 100.0, "p50_ms": 1.0, "p99_ms": 30.0, "non_2xx": 2, "socket_errors": 0},
        {"requests": 20, "per_s": 200.0, "p50_ms": 2.0, "p99_ms": 20.0, "non_2xx": 0, "socket_errors": 0},
    ]
    summary = _median(rounds)
    assert (summary["per_s"], summary["p50_ms"], summary["p99_ms"]) == (200.0, 2.0, 20.0)
    assert (summary["requests"], summary["non_2xx"], summary["socket_errors"]) == (60, 2, 1)
    assert summary["rounds_per_s"] == [300.0, 100.0, 200.0]


@pytest.fixture
def ping() -> Iterator[str]:
    app = Chalice(app_name="wrk")

    @app.route("/ping")
    def pong() -> dict[str, bool]:
        return {"pong": True}

    pool = FunctionPool("api", app, concurrency=2)
    gateway = HttpGateway(app, lambda header: {}, pool=pool)
    gateway.start()
    yield f"{gateway.url}/ping"
    gateway.stop()
    pool.stop()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
@pytest.mark.parametrize("close", [False, True])
def test_wrk_clients_are_served_with_keep_alive_and_with_a_new_connection_each(ping, close) -> None:
    figures = wrk(ping, close=close, duration=1, connections=4)
    assert figures["requests"] > 0
    assert figures["non_2xx"] == 0 and figures["socket_errors"] == 0
