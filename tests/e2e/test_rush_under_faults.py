"""A rush of 600 orders on 100 units against a dev stack that injects AWS's bad luck (20 %
transaction conflicts and 20 % throttling): exactly 100 units sell, every answer is 201, 409 or
503 with Retry-After, and after settlement the stock invariant holds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.devstack.test_devstack_process import _free_port
from tests.support import iso

# Its own stack, a rush and a settlement that waits out payment retries: more than the suite's 300 s
# per test on a machine several times slower than usual. Mostly waiting, so it starts first (rank 0).
pytestmark = [pytest.mark.e2e, pytest.mark.slow(rank=0), pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
FAULTS = "conflict=0.2,throttle=0.2,seed=14"
STOCK, ORDERS, BUYERS, CONNECTIONS = 100, 600, 25, 16


class Client:
    """What a well-behaved client does with 503 try_again: wait Retry-After and ask again."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=CONNECTIONS, pool_maxsize=CONNECTIONS)
        self.session.mount("http://", adapter)

    def once(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {**kw.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        return self.session.request(method, self.base + path, headers=headers, timeout=60, **kw)

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        for _ in range(30):
            response = self.once(method, path, token, **kw)
            if response.status_code != 503:
                return response
            assert response.headers.get("Retry-After"), response.text
            time.sleep(0.2)
        raise AssertionError(f"{method} {path} kept answering 503")


def sign_up(client: Client) -> tuple[str, str]:
    """(user id, token) of a new user; a sign-up answered 503 left nothing behind, so it is simply repeated."""
    while True:
        email, password = f"rush-{uuid.uuid4().hex[:12]}@example.com", "Passw0rd!rush"
        made = client.call("POST", "/auth/signup", json={"email": email, "password": password, "name": "Rusher"})
        if made.status_code == 201:
            break
        assert made.status_code == 409, made.text  # an earlier attempt got through after all
    tokens = client.call("POST", "/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    return made.json()["user_id"], tokens.json()["id_token"]


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory) -> Any:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDROP_")}
    folder = tmp_path_factory.mktemp("rush")
    # Files, not pipes: nobody reads the stack's output while the rush runs, and a full pipe would stall it.
    output, errors = (folder / "stdout").open("w"), (folder / "stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--no-demo", "--http-port", str(port), "--ws-port", "0", "--faults", FAULTS],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=errors,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if "LiveDrop dev stack ready" in (folder / "stdout").read_text():
                break
            time.sleep(0.1)
        printed = (folder / "stdout").read_text()
        assert "LiveDrop dev stack ready" in printed, printed + (folder / "stderr").read_text()
        assert f"Faults:     {FAULTS}\n" in printed
        yield {"client": Client(f"http://127.0.0.1:{port}"), "process": process, "stderr": folder / "stderr"}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.close()
        errors.close()


def test_a_rush_under_conflicts_and_throttling_sells_exactly_the_stock(faulty_stack) -> None:
    client: Client = faulty_stack["client"]
    _, owner = sign_up(client)
    creator = client.call("POST", "/creators", owner, json={"name": "Rush studio", "profile": ""})
    assert creator.status_code == 201, creator.text
    creator_id = creator.json()["creator_id"]
    product_body = {"name": "Rush tee", "description": "", "price_cents": 2500, "currency": "USD"}
    product = client.call("POST", f"/creators/{creator_id}/products", owner, json=product_body)
    assert product.status_code == 201, product.text
    drop_body = {
        "product_id": product.json()["product_id"],
        "start_time": iso(-60),
        "end_time": iso(3600),
        "stock": STOCK,
    }
    drop = client.call("POST", f"/creators/{creator_id}/drops", owner, json=drop_body)
    assert drop.status_code == 201, drop.text
    drop_id = drop.json()["drop_id"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        buyers = list(pool.map(lambda _: sign_up(client), range(BUYERS)))

    def order(n: int) -> tuple[int, str, requests.Response]:
        user_id, token = buyers[n % BUYERS]
        headers = {"Idempotency-Key": f"rush-{n}"}
        body = {"drop_id": drop_id, "quantity": 1, "payment_token": "tok_visa"}
        return n, user_id, client.once("POST", "/orders", token, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        answers = list(pool.map(order, range(ORDERS)))

    statuses = Counter(response.status_code for _, _, response in answers)
    assert set(statuses) <= {201, 409, 503}, statuses
    for _, _, response in answers:
        if response.status_code == 409:
            assert response.json()["error"]["code"] in ("sold_out", "insufficient_stock"), response.text
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "try_again" and response.headers["Retry-After"]
    assert statuses[201] == STOCK, statuses

    # Settlement: every reservation is paid (tok_visa) through the faulty pipeline.
    placed = [
        (n, user_id, response.json()["order_id"]) for n, user_id, response in answers if response.status_code == 201
    ]
    pending = {order_id: buyers[n % BUYERS][1] for n, _, order_id in placed}
    statuses_after: dict[str, str] = {}
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        for order_id, token in list(pending.items()):
            seen = client.call("GET", f"/orders/{order_id}", token)
            assert seen.status_code == 200, seen.text
            if seen.json()["status"] != "pending_payment":
                statuses_after[order_id] = seen.json()["status"]
                del pending[order_id]
        # Settling waits out payment retries under throttling: asking once a second for each order still
        # pending leaves the stack's CPU to the settling (every 0.2 s, the asking took a good part of it).
        time.sleep(1.0)
    assert not pending, f"{len(pending)} orders still pending_payment"
    assert set(statuses_after.values()) == {"confirmed"}

    # The invariant, from what every buyer sees: stock + units of orders not failed/expired == initial stock.
    held = 0
    for user_id, token in buyers:
        page = ""
        while page is not None:
            listed = client.call("GET", f"/users/{user_id}/orders?limit=100" + (f"&page={page}" if page else ""), token)
            assert listed.status_code == 200, listed.text
            held += sum(
                o["quantity"] for o in listed.json()["items"]
                if o["drop_id"] == drop_id and o["status"] not in ("payment_failed", "expired")
            )  # fmt: skip
            page = listed.json()["next_page"]
    final = client.call("GET", f"/drops/{drop_id}").json()
    assert final["stock"] == 0 and final["status"] == "sold_out"
    assert final["stock"] + held == final["initial_stock"] == STOCK

    # And the faults really were injected: the embedded AWS says so when the stack stops.
    process = faulty_stack["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    # One summary per embedded AWS process (DynamoDB, messaging), each with its own dice: add them up.
    stderr = faulty_stack["stderr"].read_text()
    summaries = re.findall(r"fault injection \((.+?)\): (\d+) of (\d+) requests .*\((.*)\)", stderr)
    assert {label for label, *_ in summaries} >= {"dynamodb", "messaging"}, stderr[-2000:]
    injected: Counter[str] = Counter()
    for *_, kinds in summaries:
        counts = (part.split() for part in kinds.split(", ") if part != "none")
        injected.update({kind: int(count) for kind, count in counts})
    assert injected["conflict"] > 0 and injected["throttle"] > 0, summaries
