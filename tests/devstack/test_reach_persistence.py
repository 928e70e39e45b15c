"""`--data DIR`: a user's notification settings and the stage's VAPID key survive a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.devstack.test_persistence import call, devstack, person

# Slow: dev stacks of its own, restarted (make test starts files with slow tests first).
pytestmark = pytest.mark.slow


def test_notification_settings_and_the_vapid_key_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "devdata"
    password = "Passw0rd!" + uuid.uuid4().hex[:6]
    change = {"email": {"drop_started": False}, "web_push": {"order_confirmed": False}}
    with devstack(data) as (base, _):
        fan = call(base, "POST", "/auth/signup", None, 201, json=person("f@e.com", password))
        token = call(base, "POST", "/auth/login", json={"email": "f@e.com", "password": password})["id_token"]
        path = f"/users/{fan['user_id']}/notification-settings"
        before = call(base, "PUT", path, token, json=change)
        key = call(base, "GET", "/push/vapid-public-key")["public_key"]
    assert before["email"]["drop_started"] is False and before["web_push"]["order_confirmed"] is False
    with devstack(data) as (base, _):
        token = call(base, "POST", "/auth/login", json={"email": "f@e.com", "password": password})["id_token"]
        assert call(base, "GET", path, token) == before
        assert call(base, "GET", "/push/vapid-public-key")["public_key"] == key
