"""Demo data for `make dev`: a creator with followers, a product, a drop going live a minute after
start-up and one live now, so the web page has something to show on first open."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.stack import DevStack

PASSWORD = "LiveDrop-demo-1"
DEMO_RETRIES = 20
ACCOUNTS = (
    ("creator@livedrop.dev", "Nova (creator)", "creator"),
    ("fan@livedrop.dev", "Sam (fan)", "fan"),
    ("fan2@livedrop.dev", "Kim (fan)", "fan"),
)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_demo(stack: DevStack) -> list[dict[str, Any]]:
    """Create the demo accounts and catalog through the app's own REST API; returns the accounts."""
    import requests

    base = stack.rest_url
    session = requests.Session()

    def call(method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # With --faults the API may answer 503 try_again: a client waits Retry-After and asks again.
        for _ in range(DEMO_RETRIES):
            response = session.request(method, base + path, headers=headers, timeout=30, **kw)
            if response.status_code != 503:
                break
            time.sleep(min(float(response.headers.get("Retry-After") or 1), 5.0))
        if path == "/auth/signup" and response.status_code == 409:
            return None  # an earlier attempt got through after all; log-in finishes the account
        response.raise_for_status()
        return response.json() if response.content else None

    accounts = [{"email": email, "password": PASSWORD, "role": role} for email, _, role in ACCOUNTS]
    known = session.post(base + "/auth/login", json={"email": ACCOUNTS[0][0], "password": PASSWORD}, timeout=30)
    if known.status_code == 200:
        # Restored from a data folder: the demo is there already, with whatever was done to it since.
        return accounts
    tokens: dict[str, str] = {}
    for email, name, _ in ACCOUNTS:
        call("POST", "/auth/signup", json={"email": email, "password": PASSWORD, "name": name})
        tokens[email] = call("POST", "/auth/login", json={"email": email, "password": PASSWORD})["id_token"]
    creator_token = tokens[ACCOUNTS[0][0]]
    creator = call("POST", "/creators", creator_token, json={"name": "Nova Studio", "profile": "Limited prints"})
    for email, _, role in ACCOUNTS:
        if role == "fan":
            call("POST", f"/creators/{creator['creator_id']}/follow", tokens[email])
    now = datetime.now(UTC)
    drops = (
        ("Glow hoodie", 6500, "Heavyweight hoodie, 300 made.", now - timedelta(minutes=1), 300),
        ("Signed print", 4000, "A3 print, signed and numbered.", now + timedelta(minutes=1), 50),
    )
    for name, price, description, start, stock in drops:
        product = call(
            "POST",
            f"/creators/{creator['creator_id']}/products",
            creator_token,
            json={"name": name, "description": description, "price_cents": price, "currency": "USD"},
        )
        call(
            "POST",
            f"/creators/{creator['creator_id']}/drops",
            creator_token,
            json={
                "product_id": product["product_id"],
                "start_time": _iso(start),
                "end_time": _iso(now + timedelta(hours=2)),
                "stock": stock,
                "per_user_limit": 2,
            },
        )
    return accounts
