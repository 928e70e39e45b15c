"""Helpers the tests share: an HTTP client of the gateway and signed-up users."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests
from botocore.client import BaseClient

from devstack.environments import current_function

# What a client may send again when its connection drops before an answer comes: a read, or a write that
# carries an Idempotency-Key (the server answers a repeat with the first answer and does nothing more).
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})
ATTEMPTS = 3


class Api:
    """A small JSON client of the REST gateway.

    Its connections are pooled and kept alive, so one may have been idle past the gateway's keep-alive
    timeout (60 s, as servers close idle connections) and be closed by it just as a request goes out:
    the request is then reset. A client of any HTTP service meets that race; this one does what a client
    should, and sends again what is safe to repeat (_REPEATABLE), up to ATTEMPTS times in all.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64)
        self.session.mount("http://", adapter)

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        merged = dict(headers or {})
        if token:
            merged["Authorization"] = f"Bearer {token}"
        repeatable = method.upper() in _REPEATABLE or any(k.lower() == "idempotency-key" for k in merged)
        url = self.base_url + path
        for _ in range(ATTEMPTS - 1 if repeatable else 0):
            try:
                return self.session.request(method, url, json=json, data=data, headers=merged, timeout=30)
            except requests.ConnectionError:
                pass  # reset before an answer: safe to send again
        return self.session.request(method, url, json=json, data=data, headers=merged, timeout=30)

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.call("GET", path, token, **kw)

    def post(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.call("POST", path, token, **kw)

    def delete(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return self.call("DELETE", path, token, **kw)

    def close(self) -> None:
        self.session.close()


@dataclass
class SignedInUser:
    user_id: str
    email: str
    password: str
    name: str
    token: str
    refresh_token: str


def sign_up_user(api: Api, name: str = "Fan", creator: bool = False) -> SignedInUser:
    """Sign up and log in a fresh user (and give it a creator profile if asked)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "Passw0rd!" + uuid.uuid4().hex[:6]
    signed = api.post("/auth/signup", json={"email": email, "password": password, "name": name})
    assert signed.status_code == 201, signed.text
    tokens = api.post("/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    user = SignedInUser(
        signed.json()["user_id"], email, password, name, tokens.json()["id_token"], tokens.json()["refresh_token"]
    )
    if creator:
        made = api.post("/creators", user.token, json={"name": f"{name}'s studio", "profile": "hi"})
        assert made.status_code == 201, made.text
    return user


class DynamoCalls:
    """Counts DynamoDB API calls made in the api function's environments while the block runs. Each
    environment has its own copy of the app and so its own clients (devstack.app_copies), and API
    requests their own connections: every botocore client's calls are watched, those of the api's
    environments counted."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._original: Any = None

    def __enter__(self) -> DynamoCalls:
        original = self._original = BaseClient._make_api_call

        def counted(client: Any, operation: str, params: Any) -> Any:
            if current_function() == "api" and client.meta.service_model.service_name == "dynamodb":
                self.calls.append(operation)
            return original(client, operation, params)

        BaseClient._make_api_call = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        BaseClient._make_api_call = self._original  # type: ignore[method-assign]


def iso(delta_seconds: float = 0.0) -> str:
    """A docs/api.md time (UTC, milliseconds, Z) `delta_seconds` from now."""
    moment = datetime.now(UTC) + timedelta(seconds=delta_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def open_shop(api: Api, owner: SignedInUser, name: str, price_cents: int) -> tuple[str, dict[str, Any]]:
    """The owner's creator id and a new product of theirs."""
    creator_id = api.get("/me", owner.token).json()["creator_id"]
    product = api.post(
        f"/creators/{creator_id}/products",
        owner.token,
        json={"name": name, "description": "limited", "price_cents": price_cents, "currency": "USD"},
    )
    assert product.status_code == 201, product.text
    return creator_id, product.json()


def sale_drop(api: Api, shop: tuple[SignedInUser, str, dict[str, Any]], sale_mode: str, start: float, stock: int,
              **settings: Any) -> dict[str, Any]:  # fmt: skip
    """A new drop of the shop's product (owner, creator id, product) in `sale_mode`, starting `start`
    seconds from now and ending in an hour, with any other drop settings given."""
    owner, creator_id, product = shop
    body = {
        "product_id": product["product_id"],
        "start_time": iso(start),
        "end_time": iso(3600),
        "stock": stock,
        "sale_mode": sale_mode,
    }
    response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body | settings)
    assert response.status_code == 201, response.text
    return response.json()


def spawn_devstack(http_port: int, ws_port: int) -> subprocess.Popen[str]:
    """`python -m devstack` on these ports, as a newcomer starts it: none of this test session's
    LIVEDROP_ settings, run from the repository, stdout and stderr merged into one text pipe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
    return subprocess.Popen(
        [sys.executable, "-m", "devstack", "--http-port", str(http_port), "--ws-port", str(ws_port)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_process(process: subprocess.Popen[str]) -> None:
    """Kill `process` if a failed test left it running, reap it, and close its output pipe."""
    if process.poll() is None:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()


T = TypeVar("T")
BUSY_ATTEMPTS = 20  # tries of a write refused as busy, each after a longer pause


def each_accepted(call: Callable[[Any], T], items: Iterable[Any], workers: int = 8) -> list[T]:
    """`call(item)` for every item, `workers` at a time. A call refused as `try_again` (an item it writes
    was busy with another write: the dev stack's contention model, as DynamoDB) is tried again after a
    growing random pause, as a client retries a 503; a refused call wrote nothing."""
    from chalicelib.core.errors import TryAgainError

    def accepted(item: Any) -> T:
        for attempt in range(1, BUSY_ATTEMPTS):
            try:
                return call(item)
            except TryAgainError:
                _busy_pause(attempt)
        return call(item)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(accepted, items))


def _busy_pause(attempt: int) -> None:
    time.sleep(random.uniform(0.02, 0.05) * attempt)


def answered(call: Callable[[], requests.Response]) -> requests.Response:
    """`call()`'s answer, asked again while it is 503 `try_again` (an item the request writes was busy: the
    API says to retry, and a refused request wrote nothing), as each_accepted does in process."""
    for attempt in range(1, BUSY_ATTEMPTS):
        response = call()
        if response.status_code != 503 or response.json().get("error", {}).get("code") != "try_again":
            return response
        _busy_pause(attempt)
    return call()


def wait_for(check: Callable[[], T], timeout: float = 60.0, every: float = 0.1) -> T:
    """The first truthy result of `check`, polled until `timeout` (a bound on an event, not a speed target)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out")


def child_pids(pid: int) -> set[int]:
    """The process ids whose parent is `pid` (read from /proc)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@dataclass(frozen=True)
class OrderAnswer:
    """What POST /orders answers for an order placed in-process: the edge's status, the body, a replay or not."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


def place_order(
    user_id: str, key: str, drop_id: str, quantity: int, payment_token: str, admission_token: str | None = None
) -> OrderAnswer:
    """orders.place_order with its NewOrder command, answered the way the REST edge answers it."""
    import json

    from chalicelib.domain import orders
    from chalicelib.edge.web import placed_order_response
    from chalicelib.schema.commands import NewOrder

    new = NewOrder(drop_id=drop_id, quantity=quantity, payment_token=payment_token, admission_token=admission_token)
    response = placed_order_response(orders.place_order(user_id, key, new))
    replayed = (response.headers or {}).get("Idempotent-Replayed") == "true"
    return OrderAnswer(response.status_code, json.loads(response.body), replayed)


def place_line(drop_id: str, timeout: float = 60.0) -> None:
    """Place a sealed line's early entries now, slice after slice, beside the dev stack's own consumer
    of the lines queue (both may run: a slice placed by one is never placed again by the other)."""
    from chalicelib.delivery import line_slices
    from chalicelib.schema.models import Line

    deadline, counted = time.monotonic() + timeout, None
    while not Line.get(drop_id, consistent_read=True).placed:
        assert time.monotonic() < deadline, f"the line of {drop_id} was not placed in {timeout} s"
        try:
            following = line_slices.place_slice(drop_id, time.monotonic() + 5, counted)
        except line_slices.LineNotReadyError:
            following = None
        counted = (following or {}).get("counted")
        if following is None:
            time.sleep(0.05)
