"""Replays a drop against any LiveDrop stage: fans follow a creator, the drop goes live, a rush of
orders, and viewers on WebSockets watching the stock.

    locust -f bench/locustfile.py --host http://127.0.0.1:8000 \
        --headless -u 200 -r 50 -t 2m     # LIVEDROP_WS_URL=ws://127.0.0.1:8001/notifications

Against AWS, --host is the REST URL output of the stack and LIVEDROP_WS_URL its WebSocket URL.
At the start one creator account schedules a drop LIVEDROP_DROP_DELAY seconds ahead (default 10).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from locust import HttpUser, User, between, events, task
from locust.exception import StopUser

PASSWORD = "Load-test-pass-1"
STATE: dict[str, Any] = {}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _account(host: str, name: str) -> dict[str, str]:
    email = f"load-{uuid.uuid4().hex[:12]}@example.com"
    requests.post(f"{host}/auth/signup", json={"email": email, "password": PASSWORD, "name": name}, timeout=30)
    tokens = requests.post(f"{host}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30).json()
    me = requests.get(f"{host}/me", headers={"Authorization": f"Bearer {tokens['id_token']}"}, timeout=30).json()
    return {"token": tokens["id_token"], "user_id": me["user_id"]}


@events.init.add_listener
def stop_quietly_on_ctrl_c(environment: Any, **_: Any) -> None:
    """Ctrl-C ends the run the way its time limit does (users stopped, summary printed, exit code kept),
    instead of a KeyboardInterrupt surfacing in whatever greenlet was running."""
    import signal

    import gevent

    def stop() -> None:
        if environment.runner is not None:
            environment.runner.quit()

    gevent.signal_handler(signal.SIGINT, stop)


@events.test_start.add_listener
def schedule_the_drop(environment: Any, **_: Any) -> None:
    host = environment.host.rstrip("/")
    creator = _account(host, "Load creator")
    auth = {"Authorization": f"Bearer {creator['token']}"}
    creator_id = requests.post(f"{host}/creators", headers=auth, json={"name": "Load test"}, timeout=30).json()[
        "creator_id"
    ]
    product = requests.post(
        f"{host}/creators/{creator_id}/products",
        headers=auth,
        json={"name": "Load tee", "price_cents": 1000, "currency": "USD"},
        timeout=30,
    ).json()["product_id"]
    start = datetime.now(UTC) + timedelta(seconds=float(os.environ.get("LIVEDROP_DROP_DELAY", "10")))
    drop = requests.post(
        f"{host}/creators/{creator_id}/drops",
        headers=auth,
        json={
            "product_id": product,
            "start_time": _iso(start),
            "end_time": _iso(start + timedelta(hours=1)),
            "stock": int(os.environ.get("LIVEDROP_DROP_STOCK", "500")),
            "per_user_limit": 2,
        },
        timeout=30,
    ).json()
    STATE.update(creator_id=creator_id, drop_id=drop["drop_id"], start=start.timestamp())


class Fan(HttpUser):
    """Follows the creator, browses, and buys once the drop is live."""

    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.account = _account(self.host.rstrip("/"), "Load fan")
        self.auth = {"Authorization": f"Bearer {self.account['token']}"}
        self.client.post(f"/creators/{STATE['creator_id']}/follow", headers=self.auth, name="/creators/[id]/follow")

    @task(5)
    def browse(self) -> None:
        self.client.get("/drops?status=live&limit=20", name="/drops?status=live")

    @task(5)
    def view_drop(self) -> None:
        self.client.get(f"/drops/{STATE['drop_id']}", name="/drops/[id]")

    @task(2)
    def buy(self) -> None:
        if time.time() < STATE["start"]:
            return
        key = uuid.uuid4().hex
        body = {"drop_id": STATE["drop_id"], "quantity": 1, "payment_token": "tok_visa"}
        with self.client.post(
            "/orders", json=body, headers=self.auth | {"Idempotency-Key": key}, name="/orders", catch_response=True
        ) as response:
            # Sold out, not started and over the limit are answers, not failures.
            if response.status_code in (201, 409):
                response.success()


class Viewer(User):
    """Keeps a WebSocket open on the drop page and counts the frames it is pushed."""

    wait_time = between(1, 2)
    socket: Any = None

    def on_start(self) -> None:
        from websockets.sync.client import connect

        host = self.host.rstrip("/")
        ws_url = os.environ.get("LIVEDROP_WS_URL", "ws://127.0.0.1:8001/notifications")
        account = _account(host, "Load viewer")
        started = time.perf_counter()
        try:
            # Entered by hand: the socket lives as long as the user, across tasks, until on_stop.
            self.socket = connect(f"{ws_url}?token={account['token']}", open_timeout=30).__enter__()
            self.socket.send(json.dumps({"action": "subscribe", "drop_id": STATE["drop_id"]}))
        except Exception as error:  # noqa: BLE001 - a refused or dropped socket is a failed request, not a crash
            self._fire("connect", started, 0, error)
            raise StopUser() from None
        self._fire("connect", started, 0)
        self.frames = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.socket:
                frame = json.loads(raw)
                self.frames += 1
                self._fire(frame.get("type", "frame"), time.perf_counter(), len(raw))
        except Exception:  # noqa: BLE001 - the socket closed (on stop, or by the server): reading ends
            return

    def _fire(self, name: str, started: float, size: int, exception: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=size,
            exception=exception,
            context={},
        )

    @task
    def ping(self) -> None:
        started = time.perf_counter()
        try:
            self.socket.send(json.dumps({"action": "ping"}))
        except Exception as error:  # noqa: BLE001 - see below
            if _stopping(self.environment):
                raise StopUser() from None  # the test is ending: a closing socket is expected
            self._fire("ping", started, 0, error)
            raise StopUser() from None

    def on_stop(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):
                self.socket.close()


def _stopping(environment: Any) -> bool:
    runner = getattr(environment, "runner", None)
    return runner is None or str(getattr(runner, "state", "")) in ("stopping", "stopped", "cleanup")
