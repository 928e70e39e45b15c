"""Functions run in pools of warm execution environments, as in Lambda: reused, capped, throttled when full."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chalice import Chalice
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from devstack.environments import FunctionPool, Throttled
from devstack.http_gateway import HttpGateway
from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from devstack.lambda_runtime import concurrency_from_env
from devstack.ws_gateway import WebSocketGateway

DEADLINE = 30.0  # generous: every wait below ends as soon as its condition holds


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Gate:
    """A handler that records how many invocations run at once and holds each until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            assert self.release.wait(DEADLINE)
            return {"seen": event.get("n")}
        finally:
            with self._lock:
                self.running -= 1


def _app() -> Chalice:
    app = Chalice(app_name="environments")

    @app.route("/ping")
    def ping() -> dict[str, Any]:
        return {"pong": threading.current_thread().name}

    @app.route("/wait")
    def wait() -> dict[str, Any]:
        assert app.release.wait(DEADLINE)  # type: ignore[attr-defined]
        return {"waited": True}

    app.release = threading.Event()  # type: ignore[attr-defined]
    return app


@pytest.fixture
def gateway_with() -> Iterator[Callable[..., HttpGateway]]:
    started: list[tuple[HttpGateway, FunctionPool]] = []

    def make(**pool_options: Any) -> HttpGateway:
        app = _app()
        pool = FunctionPool("api", app, **pool_options)
        gateway = HttpGateway(app, lambda header: {}, pool=pool)
        gateway.start()
        started.append((gateway, pool))
        return gateway

    yield make
    for gateway, pool in started:
        gateway.app.release.set()  # type: ignore[attr-defined]
        gateway.stop()
        pool.stop()


def _get(url: str, path: str, close: bool = True) -> tuple[int, dict[str, Any]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=DEADLINE)
    try:
        conn.request("GET", path, headers={"Connection": "close"} if close else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_environments_are_reused_over_hundreds_of_new_connections(gateway_with) -> None:
    inits: list[str] = []
    gateway = gateway_with(concurrency=3, init=lambda: inits.append(threading.current_thread().name))

    with ThreadPoolExecutor(max_workers=6) as clients:
        answers = list(clients.map(lambda _: _get(gateway.url, "/ping"), range(300)))

    assert {status for status, _ in answers} == {200}
    stats = gateway.pool.stats()
    assert stats["invocations"] == 300
    # One init per environment, never one per connection or per client thread.
    assert 1 <= stats["environments"] <= 3
    assert len(inits) == stats["inits"] == stats["environments"]
    assert {body["pong"] for _, body in answers} == set(inits)


def test_sequential_requests_keep_one_environment(gateway_with) -> None:
    gateway = gateway_with(concurrency=8)
    for _ in range(200):
        assert _get(gateway.url, "/ping")[0] == 200
    assert gateway.pool.stats()["environments"] == 1


def test_dev_stack_api_function_does_not_init_per_connection(stack) -> None:
    pool = stack.pools["api"]
    _get(stack.rest_url, "/health")
    before = pool.stats()["inits"]
    for _ in range(200):
        assert _get(stack.rest_url, "/health")[0] == 200
    assert pool.stats()["inits"] == before
    assert set(stack.pools) >= {"api", "ws_connect", "ws_message", "ws_disconnect"}


def test_concurrency_limit_holds_and_the_rest_wait_in_the_queue() -> None:
    gate = Gate()
    pool = FunctionPool("consumer", gate, concurrency=3, queue_size=100)
    try:
        futures = [pool.submit({"n": n}) for n in range(10)]
        # The pool counts an environment busy a moment before its handler runs: wait for both.
        _until(
            lambda: pool.stats()["busy"] == 3 and pool.stats()["queued"] == 7 and gate.running == 3,
            "3 busy and running, 7 queued",
        )
        assert gate.running == 3
        gate.release.set()
        assert [f.result(DEADLINE) for f in futures] == [{"seen": n} for n in range(10)]
        assert gate.most == 3
        assert pool.stats()["environments"] == 3
    finally:
        gate.release.set()
        pool.stop()


def test_full_pool_and_queue_throttle_synchronous_calls_but_not_event_sources() -> None:
    gate = Gate()
    pool = FunctionPool("consumer", gate, concurrency=1, queue_size=1)
    try:
        first, second = pool.submit({"n": 1}), pool.submit({"n": 2})
        _until(lambda: pool.stats()["busy"] == 1 and pool.stats()["queued"] == 1, "1 busy, 1 queued")
        with pytest.raises(Throttled):
            pool.submit({"n": 3})
        # An event source's invocation waits for its turn instead.
        with ThreadPoolExecutor(max_workers=1) as poller:
            polled = poller.submit(pool, {"n": 4}, None)
            _until(lambda: pool.stats()["queued"] == 2, "the poller's invocation queued")
            gate.release.set()
            assert polled.result(DEADLINE) == {"seen": 4}
        assert [first.result(DEADLINE), second.result(DEADLINE)] == [{"seen": 1}, {"seen": 2}]
        assert pool.stats()["throttles"] == 1 and gate.most == 1
    finally:
        gate.release.set()
        pool.stop()


def test_a_raising_handler_fails_only_its_invocation() -> None:
    def handler(event: dict[str, Any], context: Any) -> Any:
        if event["fail"]:
            raise ValueError("boom")
        return context.function_name

    pool = FunctionPool("payments", handler, concurrency=1)
    try:
        with pytest.raises(ValueError, match="boom"):
            pool({"fail": True})
        assert pool({"fail": False}) == "payments"
        assert pool.stats()["environments"] == 1
    finally:
        pool.stop()


def test_init_duration_is_logged_once_per_environment(caplog) -> None:
    caplog.set_level(logging.INFO, logger="devstack.lambda")
    pool = FunctionPool("fanout", lambda event, context: None, concurrency=2)
    try:
        for _ in range(20):
            pool({})
    finally:
        pool.stop()
    reports = [r.getMessage() for r in caplog.records if "Init Duration" in r.getMessage()]
    assert len(reports) == pool.stats()["environments"] == 1
    assert reports[0].startswith("INIT_REPORT Function: fanout") and reports[0].endswith(" ms")


def test_rest_gateway_answers_429_in_the_api_error_shape_when_pool_and_queue_are_full(gateway_with) -> None:
    gateway = gateway_with(concurrency=2, queue_size=1)
    with ThreadPoolExecutor(max_workers=3) as clients:
        held = [clients.submit(_get, gateway.url, "/wait") for _ in range(3)]
        _until(lambda: gateway.pool.stats()["busy"] == 2 and gateway.pool.stats()["queued"] == 1, "full pool")
        status, body = _get(gateway.url, "/ping", close=False)
        assert status == 429
        assert body == {"error": {"code": "throttled", "message": "Too Many Requests"}}
        gateway.app.release.set()  # type: ignore[attr-defined]
        assert [f.result(DEADLINE) for f in held] == [(200, {"waited": True})] * 3
    assert gateway.pool.stats()["throttles"] == 1
    assert _get(gateway.url, "/ping")[0] == 200


def test_concurrency_overrides_come_from_the_environment() -> None:
    assert concurrency_from_env({"LIVEDROP_DEV_CONCURRENCY": "api=32, payments=2"}) == {"api": 32, "payments": 2}
    assert concurrency_from_env({}) == {}
    with pytest.raises(ValueError):
        concurrency_from_env({"LIVEDROP_DEV_CONCURRENCY": "api=0"})


# --- WebSocket routes run in pools of their own --------------------------------------------------------


def test_throttled_connect_is_refused_with_429() -> None:
    gate = Gate()

    def on_connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
        gate(event, context)
        return {"statusCode": 200}

    connect_pool = FunctionPool("ws_connect", on_connect, concurrency=1, queue_size=0)
    gateway = WebSocketGateway({"$connect": connect_pool})
    gateway.start()
    try:
        with ThreadPoolExecutor(max_workers=1) as opener:
            first = opener.submit(connect, gateway.url, open_timeout=DEADLINE)
            _until(lambda: connect_pool.stats()["busy"] == 1, "the first $connect running")
            with pytest.raises(InvalidStatus) as refused:
                connect(gateway.url, open_timeout=DEADLINE)
            assert refused.value.response.status_code == 429
            gate.release.set()
            with first.result(DEADLINE):
                pass
    finally:
        gate.release.set()
        gateway.stop()
        connect_pool.stop()


def test_a_storm_of_disconnects_does_not_hold_back_other_users_messages_or_pushes() -> None:
    import boto3
    from botocore.config import Config

    cleanup = threading.Event()
    received: list[str] = []
    connected: dict[str, str] = {}

    def on_connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
        connected[event["queryStringParameters"]["user"] + event["queryStringParameters"]["n"]] = event[
            "requestContext"
        ]["connectionId"]
        return {"statusCode": 200}

    def on_message(event: dict[str, Any], context: Any) -> None:
        received.append(event["body"])

    def on_disconnect(event: dict[str, Any], context: Any) -> None:
        cleanup.wait(DEADLINE)  # a slow cleanup: every $disconnect environment stays busy

    gateway = WebSocketGateway({"$connect": on_connect, "$default": on_message, "$disconnect": on_disconnect})
    gateway.start()
    try:
        management = boto3.session.Session().client(
            "apigatewaymanagementapi",
            endpoint_url=gateway.management_endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(retries={"max_attempts": 1}),
        )
        with connect(f"{gateway.url}?user=b&n=0", open_timeout=DEADLINE) as other:
            for n in range(30):
                with connect(f"{gateway.url}?user=a&n={n}", open_timeout=DEADLINE):
                    pass
            disconnects = gateway.pools["$disconnect"]
            _until(lambda: disconnects.stats()["invocations"] + disconnects.stats()["queued"] >= 30, "the storm")
            assert disconnects.stats()["busy"] == disconnects.concurrency  # all held by the slow cleanup

            other.send("still here")
            _until(lambda: received == ["still here"], "the other user's message handled")
            management.post_to_connection(ConnectionId=connected["b0"], Data=b"pushed")
            assert other.recv(timeout=DEADLINE) == "pushed"
            cleanup.set()
        _until(lambda: disconnects.stats()["invocations"] == 31 and disconnects.stats()["busy"] == 0, "cleanup done")
    finally:
        cleanup.set()
        gateway.stop()


def test_a_throttled_message_gets_api_gateways_frame_and_the_socket_stays_open() -> None:
    gate = Gate()
    message_pool = FunctionPool("ws_message", gate, concurrency=1, queue_size=0)
    gateway = WebSocketGateway({"$default": message_pool})
    gateway.start()
    try:
        with connect(gateway.url, open_timeout=DEADLINE) as busy, connect(gateway.url, open_timeout=DEADLINE) as other:
            busy.send("hold the only environment")
            _until(lambda: message_pool.stats()["busy"] == 1, "the first message running")
            other.send("one more")
            frame = json.loads(other.recv(timeout=DEADLINE))
            assert frame["message"] == "Too Many Requests" and frame["connectionId"] and frame["requestId"]
            gate.release.set()
            _until(lambda: message_pool.stats()["busy"] == 0, "the first message done")
            other.send("now there is room")
            _until(lambda: gate.calls == 2, "the later message handled")
    finally:
        gate.release.set()
        gateway.stop()
        message_pool.stop()


def test_a_function_past_the_integration_timeout_is_answered_504() -> None:
    app = _app()
    pool = FunctionPool("api", app, concurrency=1)
    gateway = HttpGateway(app, lambda header: {}, pool=pool, integration_timeout=0.2)
    gateway.start()
    try:
        status, body = _get(gateway.url, "/wait")  # held until released: only the timeout can answer it
        assert (status, body) == (504, {"error": {"code": "timeout", "message": "Endpoint request timed out"}})
    finally:
        app.release.set()  # type: ignore[attr-defined]
        gateway.stop()
        pool.stop()
