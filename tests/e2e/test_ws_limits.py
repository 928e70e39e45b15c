"""WebSocket quotas, like API Gateway's: subscriptions per connection, connections per user; and a
subscription to a drop that does not exist is an error frame. The caps are lowered for the test
(the documented numbers are MAX_SUBSCRIPTIONS_PER_CONNECTION and MAX_CONNECTIONS_PER_USER)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.sync.client import connect

from chalicelib.domain import connections
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Connection, Subscription
from tests.e2e.support import make_drop
from tests.support import open_shop

pytestmark = pytest.mark.e2e


def _reply(ws, frame: dict) -> dict:
    ws.send(json.dumps(frame))
    return json.loads(ws.recv(timeout=30))


@pytest.fixture(scope="module")
def drops(api, new_user_factory) -> list[str]:
    owner = new_user_factory(name="Quota owner", creator=True)
    creator_id, product = open_shop(api, owner, "Quota tee", 100)
    return [make_drop(api, owner.token, creator_id, product["product_id"], 60)["drop_id"] for _ in range(4)]


def test_subscribing_to_an_unknown_drop_is_an_error_frame_and_the_socket_stays(stack, new_user) -> None:
    fan = new_user()
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=30) as ws:
        missing = "dr_" + uuid.uuid4().hex
        reply = _reply(ws, {"action": "subscribe", "drop_id": missing})
        assert reply["type"] == "error" and reply["code"] == "drop_not_found" and reply["drop_id"] == missing
        assert list(Subscription.query(missing)) == []
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}


def test_a_connection_watches_at_most_the_cap_of_drops(stack, new_user, drops, app_patch) -> None:
    app_patch("chalicelib.domain.connections", MAX_SUBSCRIPTIONS_PER_CONNECTION=3)
    fan = new_user()
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=30) as ws:
        for drop_id in drops[:3]:
            assert _reply(ws, {"action": "subscribe", "drop_id": drop_id})["type"] == "subscribed"
        # Watching a drop again is not a new subscription.
        assert _reply(ws, {"action": "subscribe", "drop_id": drops[0]})["type"] == "subscribed"
        refused = _reply(ws, {"action": "subscribe", "drop_id": drops[3]})
        assert refused["type"] == "error" and refused["code"] == "too_many_subscriptions"
        assert list(Subscription.query(drops[3])) == []
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
        # Letting one go makes room again.
        assert _reply(ws, {"action": "unsubscribe", "drop_id": drops[1]})["type"] == "unsubscribed"
        assert _reply(ws, {"action": "subscribe", "drop_id": drops[3]})["type"] == "subscribed"
        (connection,) = Connection.by_user.query(fan.user_id)
        assert int(Connection.get(connection.connection_id).subscriptions) == 3


def _refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=30)
    return refused.value.response.status_code


def _until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_user_holds_at_most_the_cap_of_connections(stack, new_user, app_patch) -> None:
    app_patch("chalicelib.domain.connections", MAX_CONNECTIONS_PER_USER=2)
    fan, other = new_user(), new_user()
    url = f"{stack.ws_url}?token={fan.token}"
    with connect(url, open_timeout=30) as first, connect(url, open_timeout=30):
        assert _refused_status(url) == 429
        with connect(f"{stack.ws_url}?token={other.token}", open_timeout=30) as ws:  # other users are not affected
            assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
        first.close()
        assert _until(lambda: len(list(Connection.by_user.query(fan.user_id))) < 2)
        with connect(url, open_timeout=30) as third:
            assert _reply(third, {"action": "ping"}) == {"type": "pong"}


def test_a_connection_whose_disconnect_was_lost_does_not_count(stack, new_user, app_patch) -> None:
    app_patch("chalicelib.domain.connections", MAX_CONNECTIONS_PER_USER=1)
    fan = new_user()
    # A socket that closed without its $disconnect reaching the app: its row and its place stay behind.
    stale = f"stale{uuid.uuid4().hex[:8]}="
    connections.open_connection(stale, fan.token)
    Connection(connection_id=stale).update([Connection.connected_at.set(now_ms() - 60_000)])
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=30) as ws:
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
    assert Connection.count(stale) == 0
    assert _until(lambda: not _held(fan.user_id))


def test_a_place_whose_row_expired_is_given_back(stack, new_user, app_patch) -> None:
    app_patch("chalicelib.domain.connections", MAX_CONNECTIONS_PER_USER=1)
    fan = new_user()
    expired = f"ttl{uuid.uuid4().hex[:8]}="
    connections.open_connection(expired, fan.token)
    Connection(connection_id=expired).delete()  # as DynamoDB's TTL removes it: no $disconnect, no release
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=30) as ws:
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
        assert expired not in _held(fan.user_id)


def _held(user_id: str) -> set[str]:
    try:
        return set(Connection.get(connections.QUOTA_PREFIX + user_id, consistent_read=True).held or ())
    except Connection.DoesNotExist:
        return set()


def _handshake(url: str):
    try:
        return connect(url, open_timeout=90, legacy=True)
    except InvalidStatus as refused:
        return refused.response.status_code
    except (OSError, InvalidMessage) as lost:  # the gateway gave up on a handshake its $connect kept waiting
        return type(lost).__name__


def test_racing_handshakes_of_one_user_open_at_most_the_cap(stack, new_user) -> None:
    """issue 24 #4: 100 simultaneous handshakes of one user left 12 to 17 sockets open (cap 10)."""
    fan = new_user()
    url = f"{stack.ws_url}?token={fan.token}"
    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(_handshake, [url] * 100))
    opened = [ws for ws in results if not isinstance(ws, int | str)]
    try:
        assert 1 <= len(opened) <= connections.MAX_CONNECTIONS_PER_USER, sorted(map(str, results))
        assert all(status in (429, 503) for status in results if isinstance(status, int)), results
        rows = {row.connection_id for row in Connection.by_user.query(fan.user_id)}
        # A place is held exactly by a stored connection (a handshake the gateway gave up on may hold one
        # until its $disconnect, or until a handshake at the cap finds it gone).
        assert rows == _held(fan.user_id) and len(opened) <= len(rows) <= connections.MAX_CONNECTIONS_PER_USER
    finally:
        for ws in opened:
            ws.close()
    # The closed sockets give their places back ($disconnect), so the user can connect again.
    assert _until(lambda: len(_held(fan.user_id)) < connections.MAX_CONNECTIONS_PER_USER)
    with connect(url, open_timeout=30) as ws:
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
