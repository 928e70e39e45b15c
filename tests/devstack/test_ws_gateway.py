"""The dev stack's WebSocket gateway keeps API Gateway's WebSocket contract (events, handshake, @connections)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from devstack.identity import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from devstack.ws_gateway import WebSocketGateway

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"apigw-websocket-{name}.json").read_text())


class Recorder:
    """Lambda-style handlers that record every event (and context) they get."""

    def __init__(self, connect_result: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {"$connect": [], "$default": [], "$disconnect": []}
        self.contexts: list[Any] = []
        self._cond = threading.Condition()
        self._connect_result = connect_result

    def _record(self, route: str, event: dict[str, Any], context: Any) -> None:
        with self._cond:
            self.events[route].append(event)
            self.contexts.append(context)
            self._cond.notify_all()

    def connect(self, event: dict[str, Any], context: Any) -> Any:
        self._record("$connect", event, context)
        return self._connect_result(event) if self._connect_result else {"statusCode": 200}

    def message(self, event: dict[str, Any], context: Any) -> Any:
        self._record("$default", event, context)
        return {"statusCode": 200, "body": "must not be echoed"}

    def disconnect(self, event: dict[str, Any], context: Any) -> Any:
        self._record("$disconnect", event, context)
        return {"statusCode": 200}

    @property
    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {"$connect": self.connect, "$default": self.message, "$disconnect": self.disconnect}

    def wait_for(self, route: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.events[route]) >= count, timeout), self.events[route]
            return list(self.events[route])


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., WebSocketGateway]]:
    started: list[WebSocketGateway] = []

    def make(handlers: dict[str, Callable[..., Any]], **kwargs: Any) -> WebSocketGateway:
        gateway = WebSocketGateway(handlers, **kwargs)
        gateway.start()
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


def _management(gateway: WebSocketGateway) -> Any:
    return boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url=gateway.management_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=16),
    )


def _connection_id(recorder: Recorder, index: int = 0) -> str:
    return recorder.wait_for("$connect", index + 1)[index]["requestContext"]["connectionId"]


def test_connect_message_disconnect_events_have_api_gateway_shape(make_gateway):
    recorder = Recorder()
    gateway = make_gateway(recorder.handlers, stage="dev")
    assert gateway.url.startswith("ws://127.0.0.1:") and gateway.url.endswith("/notifications")

    with connect(gateway.url + "?token=abc&tag=a&tag=b") as client:
        for i in range(20):
            client.send(json.dumps({"action": "ping", "n": i}))
        messages = recorder.wait_for("$default", 20)
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)  # handler return values are not echoed
    disconnect = recorder.wait_for("$disconnect", 1)[0]
    connect_event = recorder.events["$connect"][0]

    sample_connect = _sample("connect")
    assert set(connect_event) == set(sample_connect) | {"queryStringParameters", "multiValueQueryStringParameters"}
    assert set(connect_event["requestContext"]) == set(sample_connect["requestContext"])
    assert connect_event["queryStringParameters"] == {"token": "abc", "tag": "b"}
    assert connect_event["multiValueQueryStringParameters"] == {"token": ["abc"], "tag": ["a", "b"]}
    ctx = connect_event["requestContext"]
    assert (ctx["routeKey"], ctx["eventType"], ctx["stage"], ctx["messageDirection"]) == (
        "$connect",
        "CONNECT",
        "dev",
        "IN",
    )
    assert ctx["identity"] == {"sourceIp": "127.0.0.1"}
    assert len(ctx["connectionId"]) == 16 and ctx["connectionId"].endswith("=")
    assert isinstance(ctx["connectedAt"], int) and isinstance(ctx["requestTimeEpoch"], int)
    assert time.strptime(ctx["requestTime"], "%d/%b/%Y:%H:%M:%S +0000")
    assert "Sec-WebSocket-Key" in connect_event["headers"]
    assert connect_event["multiValueHeaders"]["Sec-WebSocket-Key"] == [connect_event["headers"]["Sec-WebSocket-Key"]]
    assert connect_event["isBase64Encoded"] is False

    sample_message = _sample("message")
    assert all(set(m) == set(sample_message) for m in messages)
    assert all(set(m["requestContext"]) == set(sample_message["requestContext"]) for m in messages)
    assert [json.loads(m["body"])["n"] for m in messages] == list(range(20))  # per-connection order kept
    assert {m["requestContext"]["routeKey"] for m in messages} == {"$default"}
    assert {m["requestContext"]["eventType"] for m in messages} == {"MESSAGE"}
    assert len({m["requestContext"]["messageId"] for m in messages}) == 20

    sample_disconnect = _sample("disconnect")
    assert set(disconnect) == set(sample_disconnect)
    assert set(disconnect["requestContext"]) == set(sample_disconnect["requestContext"])
    assert disconnect["requestContext"]["eventType"] == "DISCONNECT"
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000
    assert isinstance(disconnect["requestContext"]["disconnectReason"], str)

    ids = {e["requestContext"]["connectionId"] for e in [connect_event, *messages, disconnect]}
    assert ids == {ctx["connectionId"]}
    assert {e["requestContext"]["connectedAt"] for e in [*messages, disconnect]} == {ctx["connectedAt"]}
    for context in recorder.contexts:
        assert context.aws_request_id and context.function_name
        assert 0 < context.get_remaining_time_in_millis() <= 60_000
    time.sleep(0.2)
    assert len(recorder.events["$disconnect"]) == 1  # fired once


def test_connect_handler_status_refuses_handshake(make_gateway):
    def authorize(event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200 if "token" in (event.get("queryStringParameters") or {}) else 401}

    recorder = Recorder(authorize)
    gateway = make_gateway(recorder.handlers)

    with pytest.raises(InvalidStatus) as refused:
        connect(gateway.url, open_timeout=5)
    assert refused.value.response.status_code == 401
    with connect(gateway.url + "?token=t"):
        pass
    # $disconnect fires only for the accepted connection.
    assert len(recorder.wait_for("$disconnect", 1)) == 1
    time.sleep(0.2)
    assert len(recorder.events["$disconnect"]) == 1


def test_raising_connect_handler_refuses_with_500(make_gateway):
    def boom(event, context):
        raise RuntimeError("token service down")

    recorder = Recorder()
    gateway = make_gateway({"$connect": boom, "$disconnect": recorder.disconnect})
    with pytest.raises(InvalidStatus) as refused:
        connect(gateway.url, open_timeout=5)
    assert refused.value.response.status_code == 500
    time.sleep(0.2)
    assert recorder.events["$disconnect"] == []


def test_chalice_handlers_run_as_lambda_would(make_gateway, monkeypatch):
    from chalice import Chalice, Response

    monkeypatch.setenv("AWS_REGION", REGION)  # Lambda always sets it; Chalice's ws handlers need it
    app = Chalice(app_name="ws-gateway-test")
    seen: list[str] = []

    @app.on_ws_connect()
    def on_connect(event):
        if event.to_dict().get("queryStringParameters", {}).get("token") != "good":
            return Response(body={"message": "Forbidden"}, status_code=403)
        seen.append("connect")

    @app.on_ws_message()
    def on_message(event):
        seen.append(event.json_body["action"])

    @app.on_ws_disconnect()
    def on_disconnect(event):
        seen.append("disconnect")

    gateway = make_gateway({"$connect": on_connect, "$default": on_message, "$disconnect": on_disconnect})
    with pytest.raises(InvalidStatus) as refused:
        connect(gateway.url + "?token=bad", open_timeout=5)
    assert refused.value.response.status_code == 403
    with connect(gateway.url + "?token=good") as client:
        client.send('{"action": "subscribe"}')
    deadline = time.monotonic() + 5
    while "disconnect" not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == ["connect", "subscribe", "disconnect"]


def test_other_path_is_404(make_gateway):
    gateway = make_gateway(Recorder().handlers)
    with pytest.raises(InvalidStatus) as refused:
        connect(gateway.url.replace("/notifications", "/other"), open_timeout=5)
    assert refused.value.response.status_code == 404


def test_connections_api_with_boto3(make_gateway):
    recorder = Recorder()
    gateway = make_gateway(recorder.handlers)
    api = _management(gateway)

    with connect(gateway.url, user_agent_header="livedrop-test/1.0") as client:
        connection_id = _connection_id(recorder)
        api.post_to_connection(ConnectionId=connection_id, Data=b'{"type": "drop_started"}')
        assert json.loads(client.recv(timeout=5)) == {"type": "drop_started"}

        info = api.get_connection(ConnectionId=connection_id)
        assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "livedrop-test/1.0"}
        assert info["ConnectedAt"].timestamp() <= info["LastActiveAt"].timestamp() <= time.time() + 1

        api.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
    disconnect = recorder.wait_for("$disconnect", 1)[0]
    assert disconnect["requestContext"]["connectionId"] == connection_id
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000

    for gone_id in (connection_id, "AAAAAAAAAAAAAAA="):
        with pytest.raises(api.exceptions.GoneException) as gone:
            api.post_to_connection(ConnectionId=gone_id, Data=b"x")
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
        with pytest.raises(api.exceptions.GoneException):
            api.get_connection(ConnectionId=gone_id)
        with pytest.raises(api.exceptions.GoneException):
            api.delete_connection(ConnectionId=gone_id)


def test_push_to_connection_closed_by_client_is_gone(make_gateway):
    recorder = Recorder()
    gateway = make_gateway(recorder.handlers)
    api = _management(gateway)
    with connect(gateway.url):
        connection_id = _connection_id(recorder)
    recorder.wait_for("$disconnect", 1)
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId=connection_id, Data=b"late")


def test_slow_handler_does_not_block_other_connections(make_gateway):
    recorder = Recorder()
    release = threading.Event()

    def slow(event, context):
        recorder.message(event, context)
        release.wait(5)

    gateway = make_gateway({"$connect": recorder.connect, "$default": slow})
    api = _management(gateway)
    with connect(gateway.url) as busy, connect(gateway.url) as other:
        busy.send("work")
        recorder.wait_for("$default", 1)
        other_id = _connection_id(recorder, 1)
        started = time.monotonic()
        api.post_to_connection(ConnectionId=other_id, Data=b"still served")
        assert other.recv(timeout=2) == "still served"
        assert time.monotonic() - started < 1.0
        release.set()


def test_idle_connection_is_closed_with_1001(make_gateway):
    recorder = Recorder()
    gateway = make_gateway(recorder.handlers, idle_timeout=0.3)
    with connect(gateway.url) as client, pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=5)
    assert closed.value.rcvd.code == 1001
    assert recorder.wait_for("$disconnect", 1)[0]["requestContext"]["disconnectStatusCode"] == 1001


def test_fifty_clients_get_only_their_pushes_and_stop_leaves_no_thread():
    before = set(threading.enumerate())
    recorder = Recorder()
    gateway = WebSocketGateway(recorder.handlers)
    gateway.start()
    clients = []
    try:
        with contextlib.ExitStack() as stack:
            api = _management(gateway)
            with ThreadPoolExecutor(max_workers=10) as pool:
                opened = pool.map(lambda i: connect(f"{gateway.url}?client={i}", open_timeout=10), range(50))
                clients = [stack.enter_context(client) for client in opened]
                ids = {
                    e["queryStringParameters"]["client"]: e["requestContext"]["connectionId"]
                    for e in recorder.wait_for("$connect", 50)
                }
                assert len(set(ids.values())) == 50

                def push(job: tuple[int, int]) -> None:
                    client, n = job
                    api.post_to_connection(ConnectionId=ids[str(client)], Data=f"{client}:{n}".encode())

                # 150 pushes from 10 threads at once, interleaved across connections.
                list(pool.map(push, [(c, n) for n in range(3) for c in range(50)]))
            for i, client in enumerate(clients):
                received = sorted(client.recv(timeout=5) for _ in range(3))
                assert received == [f"{i}:{n}" for n in range(3)]
                with pytest.raises(TimeoutError):
                    client.recv(timeout=0.01)
            # stop() with clients still connected: each gets a close frame and $disconnect fires with 1001.
            gateway.stop()
            disconnects = recorder.wait_for("$disconnect", 50)
            assert {d["requestContext"]["disconnectStatusCode"] for d in disconnects} == {1001}
            assert len({d["requestContext"]["connectionId"] for d in disconnects}) == 50
    finally:
        gateway.stop()
    deadline = time.monotonic() + 3
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()


def test_a_frame_over_32_kb_closes_with_1009_and_a_fragmented_message_up_to_128_kb_is_read(make_gateway):
    recorder = Recorder()
    gateway = make_gateway(recorder.handlers)
    with connect(gateway.url, max_size=None) as client:
        # A 96 KB message in 32 KB frames, as a client that fragments its messages sends it.
        client.send(["x" * (32 * 1024)] * 3)
        assert recorder.wait_for("$default", 1)[0]["body"] == "x" * (96 * 1024)
        client.send("y" * (33 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    recorder.wait_for("$disconnect", 1)
    assert len(recorder.events["$default"]) == 1
