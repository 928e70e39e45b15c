"""The notifications WebSocket: who may connect, and what the server answers to client frames."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.schema.models import Connection, Subscription
from tests.e2e.support import make_drop
from tests.support import open_shop

pytestmark = pytest.mark.e2e


def _reply(ws, frame) -> dict:
    ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return json.loads(ws.recv(timeout=5))


@pytest.mark.parametrize("query", ["", "?token=", "?token=not-a-jwt"])
def test_handshake_without_a_valid_token_is_refused(stack, query) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(stack.ws_url + query, open_timeout=10)
    assert refused.value.response.status_code == 401


def test_client_frames_get_their_replies_and_bad_ones_keep_the_socket(stack, api, new_user) -> None:
    fan = new_user()
    # Subscriptions name drops that exist (subscribing to an unknown drop is an error frame).
    owner = new_user(creator=True)
    creator_id, product = open_shop(api, owner, "Watched", 100)
    product_id = product["product_id"]
    dr_x1, dr_x2 = (make_drop(api, owner.token, creator_id, product_id, 60)["drop_id"] for _ in range(2))
    with connect(f"{stack.ws_url}?token={fan.token}", open_timeout=10) as ws:
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
        for bad in ("not json", "[1]", {"action": "dance"}, {"action": "subscribe"}, {"drop_id": "d", "x": 1}):
            assert _reply(ws, bad) == {"type": "error", "code": "invalid_message"}
        assert _reply(ws, {"action": "ping"}) == {"type": "pong"}
        assert _reply(ws, {"action": "subscribe", "drop_id": dr_x1}) == {"type": "subscribed", "drop_id": dr_x1}
        (connection,) = list(Connection.by_user.query(fan.user_id))
        assert [s.connection_id for s in Subscription.query(dr_x1)] == [connection.connection_id]
        assert _reply(ws, {"action": "unsubscribe", "drop_id": dr_x1}) == {
            "type": "unsubscribed",
            "drop_id": dr_x1,
        }
        assert list(Subscription.query(dr_x1)) == []
        assert _reply(ws, {"action": "subscribe", "drop_id": dr_x2})["type"] == "subscribed"
    # $disconnect removes the connection and its subscriptions.
    for _ in range(50):
        if not list(Connection.by_user.query(fan.user_id)):
            break
        time.sleep(0.1)
    assert list(Connection.by_user.query(fan.user_id)) == []
    assert list(Subscription.query(dr_x2)) == []
