"""The dev stack enforces each function's IAM policy: a grant missing from chalicelib/functions.py breaks the
same flow locally that it would break in AWS."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.core.config import get_settings
from tests.e2e.support import make_drop, make_shop

pytestmark = pytest.mark.e2e


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def frames_of_type(ws, kind: str, timeout: float) -> list[dict]:
    """Frames until one of type `kind` arrives (or `timeout` passes)."""
    frames: list[dict] = []
    deadline = time.time() + timeout
    while not any(f.get("type") == kind for f in frames) and time.time() < deadline:
        try:
            frames.append(json.loads(ws.recv(timeout=max(0.05, deadline - time.time()))))
        except TimeoutError:
            break
    return frames


def table_arn(name: str) -> str:
    settings = get_settings()
    return f"arn:aws:dynamodb:{settings.region}:{settings.account_id}:table/{settings.table_name(name)}"


def test_following_fails_with_access_denied_without_its_grant_and_works_with_the_real_policy(
    stack, api, new_user
) -> None:
    owner, fan = new_user(name="Owner"), new_user(name="Fan")
    creator_id, _ = make_shop(api, owner.token)
    denial = ("api", "dynamodb:PutItem", table_arn("Follows"))
    with stack.iam.revoked("api", "dynamodb:PutItem", resource_suffix=":table/" + get_settings().table_name("Follows")):
        refused = api.post(f"/creators/{creator_id}/follow", fan.token)
    assert refused.status_code == 500
    assert refused.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert denial in stack.iam.denied
    followed = api.post(f"/creators/{creator_id}/follow", fan.token)
    assert followed.status_code in (200, 201), followed.text
    assert api.get(f"/users/{fan.user_id}/following", fan.token).json()["items"][0]["creator_id"] == creator_id


def test_a_drop_start_reaches_online_fans_only_when_fanout_may_scan_the_connections(stack, api, new_user) -> None:
    owner, fan = new_user(name="Owner"), new_user(name="Fan")
    creator_id, product_id = make_shop(api, owner.token)
    assert api.post(f"/creators/{creator_id}/follow", fan.token).status_code in (200, 201)
    denial = ("fanout", "dynamodb:Scan", table_arn("Connections"))
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=10) as ws:
        with stack.iam.revoked("fanout", "dynamodb:Scan"):
            before = len(stack.iam.denied)
            drop = make_drop(api, owner.token, creator_id, product_id, start=1.0)
            # In AWS the fanout function fails the message with AccessDeniedException: nobody hears of the start.
            assert wait_until(lambda: denial in stack.iam.denied[before:])
            missed = frames_of_type(ws, "drop_started", timeout=0.5)
            assert not [f for f in missed if f.get("type") == "drop_started"]
        # With the grant back (the real policy), the queue's retry of the same message delivers it.
        frames = frames_of_type(ws, "drop_started", timeout=30)
    started = [f for f in frames if f.get("type") == "drop_started"]
    assert [f["data"]["drop_id"] for f in started] == [drop["drop_id"]]


def test_a_websocket_handshake_fails_when_connect_may_not_store_the_connection(stack, new_user) -> None:
    fan = new_user()
    denial = ("ws_connect", "dynamodb:PutItem", table_arn("Connections"))
    with stack.iam.revoked("ws_connect", "dynamodb:PutItem"), pytest.raises(InvalidStatus) as refused:
        connect(f"{stack.ws_url}?token={fan.token}", open_timeout=10)
    # A Lambda error on $connect: API Gateway refuses the handshake with 500.
    assert refused.value.response.status_code == 500
    assert denial in stack.iam.denied
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=10) as ws:
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


def test_streams_and_schedules_invoke_their_functions_under_their_own_roles(stack, api, new_user) -> None:
    owner = new_user(name="Owner")
    creator_id, product_id = make_shop(api, owner.token)
    settings = get_settings()
    published = ("domain_events", "sns:Publish", settings.events_topic_arn)
    started = ("drop_lifecycle", "dynamodb:UpdateItem", table_arn("Drops"))
    with (
        stack.iam.revoked("domain_events", "sns:Publish"),
        stack.iam.revoked("drop_lifecycle", "dynamodb:UpdateItem"),
    ):
        before = len(stack.iam.denied)
        make_drop(api, owner.token, creator_id, product_id, start=1.0)
        # The Drops stream's new record (drop_scheduled) and the drop's start schedule.
        assert wait_until(lambda: published in stack.iam.denied[before:])
        assert wait_until(lambda: started in stack.iam.denied[before:])
