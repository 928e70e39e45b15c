"""Helpers for notification tests and the notifications bench: fast fans, shops, and crowds of sockets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from chalicelib.core.config import get_settings
from chalicelib.domain import follows
from tests.support import (
    each_accepted,
    iso,  # noqa: F401 - the e2e tests take it from here too
)


def parse_iso(text: str) -> float:
    """Epoch seconds of a docs/api.md time."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


@dataclass
class Fan:
    user_id: str
    token: str


def _cognito() -> Any:
    settings = get_settings()
    return boto3.session.Session().client(
        "cognito-idp", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
    )


def make_fans(count: int, workers: int = 8) -> list[Fan]:
    """Signed-in users made straight in Cognito (3 calls each instead of a sign-up's 5)."""
    settings = get_settings()
    cognito = _cognito()

    def one(_: int) -> Fan:
        email = f"fan-{uuid.uuid4().hex[:12]}@example.com"
        password = "Passw0rd!" + uuid.uuid4().hex[:6]
        created = cognito.admin_create_user(
            UserPoolId=settings.user_pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "Fan"}],
        )
        sub = next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")
        cognito.admin_set_user_password(
            UserPoolId=settings.user_pool_id, Username=email, Password=password, Permanent=True
        )
        auth = cognito.initiate_auth(
            ClientId=settings.user_pool_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        return Fan(sub, auth["AuthenticationResult"]["IdToken"])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def follow_all(fans: list[Fan], creator_id: str, workers: int = 8) -> None:
    """Make every fan follow the creator, `workers` at a time: a follow refused because the creator's
    follower count was busy is tried again (tests.support.each_accepted)."""
    each_accepted(lambda fan: follows.follow(fan.user_id, creator_id), fans, workers)


def make_shop(api: Any, owner_token: str) -> tuple[str, str]:
    """A creator profile and a product for `owner_token`'s user: (creator_id, product_id)."""
    made = api.post("/creators", owner_token, json={"name": "Studio", "profile": "drops"})
    assert made.status_code == 201, made.text
    creator_id = made.json()["creator_id"]
    product = api.post(
        f"/creators/{creator_id}/products",
        owner_token,
        json={"name": "Sneaker", "description": "limited", "price_cents": 1999, "currency": "USD"},
    )
    assert product.status_code == 201, product.text
    return creator_id, product.json()["product_id"]


def make_drop(api: Any, owner_token: str, creator_id: str, product_id: str, start: float, **extra: Any) -> dict:
    """A drop of the product starting `start` seconds from now, ending in an hour."""
    body = {"product_id": product_id, "start_time": iso(start), "end_time": iso(3600), "stock": 10, **extra}
    response = api.post(f"/creators/{creator_id}/drops", owner_token, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def send_envelope(
    event_type: str, data: dict[str, Any], event_id: str | None = None, times: int = 1, occurred_at: str | None = None
) -> dict:
    """Put a domain event envelope straight on the notify queue (as the events topic would); a repeat of an
    event carries its event_id and occurred_at (both derive from the same stream record)."""
    envelope = {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": occurred_at or iso(),
        "data": data,
    }
    sqs = boto3.session.Session().client(
        "sqs", region_name=get_settings().region, endpoint_url=get_settings().aws_endpoint_url
    )
    for _ in range(times):
        sqs.send_message(QueueUrl=get_settings().queue_url("notify"), MessageBody=json.dumps(envelope))
    return envelope


@dataclass
class Received:
    at: float
    frame: dict[str, Any]


@dataclass
class Crowd:
    """Many WebSocket clients on one asyncio loop of their own, each recording frames with arrival times."""

    url: str
    frames: list[list[Received]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _sockets: list[Any] = field(default_factory=list)
    _tasks: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="crowd", daemon=True)
        self._thread.start()

    def _run(self, coro: Any, timeout: float = 120) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def connect(self, tokens: list[str], concurrency: int = 16) -> None:
        """Open one socket per token (in order), `concurrency` handshakes at a time."""
        from websockets.asyncio.client import connect

        async def open_all() -> None:
            gate = asyncio.Semaphore(concurrency)
            base = len(self.frames)
            self.frames.extend([] for _ in tokens)
            self._sockets.extend(None for _ in tokens)

            async def one(index: int, token: str) -> None:
                async with gate:
                    ws = await connect(f"{self.url}?token={token}", max_size=None, ping_interval=None)
                self._sockets[base + index] = ws
                self._tasks.append(asyncio.ensure_future(self._read(ws, self.frames[base + index])))

            await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))

        self._run(open_all())

    async def _read(self, ws: Any, sink: list[Received]) -> None:
        try:
            async for message in ws:
                sink.append(Received(time.time(), json.loads(message)))
        except Exception:  # noqa: BLE001 - a closed socket ends its reader
            return

    def send_all(self, frame: dict[str, Any], indexes: range | list[int] | None = None) -> None:
        """Send a client frame on some (default all) sockets."""
        chosen = list(indexes) if indexes is not None else list(range(len(self._sockets)))

        async def send() -> None:
            await asyncio.gather(*(self._sockets[i].send(json.dumps(frame)) for i in chosen))

        self._run(send())

    def of_type(self, index: int, kind: str) -> list[Received]:
        """The frames of `kind` socket `index` has received so far."""
        return [r for r in list(self.frames[index]) if r.frame.get("type") == kind]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Poll until `predicate()` holds or `timeout` passes."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return bool(predicate())

    def close(self) -> None:
        """Close every socket and stop the loop."""

        async def close_all() -> None:
            await asyncio.gather(*(ws.close() for ws in self._sockets if ws is not None), return_exceptions=True)
            for task in self._tasks:
                task.cancel()

        try:
            self._run(close_all(), timeout=30)
        finally:
            assert self._loop is not None and self._thread is not None
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
