"""What several benchmarks set up through the REST API first: accounts, and a creator's live drop;
and how each writes its figures."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests


def account(session: requests.Session, base: str, name: str) -> dict[str, str]:
    """Sign a new user up and in; returns its Authorization header."""
    email, password = f"bench-{uuid.uuid4().hex[:10]}@example.com", "Bench-pass-1"
    session.post(f"{base}/auth/signup", json={"email": email, "password": password, "name": name})
    token = session.post(f"{base}/auth/login", json={"email": email, "password": password}).json()["id_token"]
    return {"Authorization": f"Bearer {token}"}


def live_drop(session: requests.Session, base: str, owner: dict[str, str], stock: int) -> tuple[str, str, str]:
    """Make `owner` a creator with a product and a drop live for the next hour: (creator, product, drop)."""
    creator = session.post(f"{base}/creators", headers=owner, json={"name": "Bench"}).json()["creator_id"]
    product = session.post(
        f"{base}/creators/{creator}/products",
        headers=owner,
        json={"name": "Tee", "price_cents": 100, "currency": "USD"},
    ).json()["product_id"]
    now = datetime.now(UTC)
    drop = session.post(
        f"{base}/creators/{creator}/drops",
        headers=owner,
        json={
            "product_id": product,
            "start_time": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "stock": stock,
        },
    ).json()["drop_id"]
    return creator, product, drop


def write_result(results_dir: str | os.PathLike[str], name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Write bench/results/<name>.json, print its summary, and return the result."""
    out = Path(results_dir) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result.get("summary", result), indent=2))
    return result
