"""WebSocket connections and drop-page subscriptions: who is online, and who watches which drop."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from chalicelib.db import now_ms
from chalicelib.errors import InvalidRequestError
from chalicelib.models import Connection, Follow, Subscription
from chalicelib.tokens import verifier

# API Gateway closes a WebSocket after 2 h; rows outlive it a little so TTL never races a live socket.
CONNECTION_TTL = timedelta(hours=2, minutes=10)
_MAX_DROP_ID = 128
_KEY_BATCH = 100  # BatchGetItem's limit


def open_connection(connection_id: str, token: str | None) -> str:
    """Store the connection of the user the token names; UnauthorizedError for a bad or missing token."""
    user_id = verifier().claims(token)["sub"]
    Connection(connection_id=connection_id, user_id=user_id, connected_at=now_ms(), ttl=CONNECTION_TTL).save()
    return user_id


def close_connection(connection_id: str) -> None:
    """Forget a connection and every subscription it held (also fine when already gone)."""
    drops = [row.drop_id for row in Subscription.by_connection.query(connection_id)]
    if drops:
        with Subscription.batch_write() as batch:
            for drop_id in drops:
                batch.delete(Subscription(drop_id=drop_id, connection_id=connection_id))
    Connection(connection_id=connection_id).delete()


def subscribe(connection_id: str, drop_id: str) -> None:
    """Watch a drop's page from this connection (live stock)."""
    Subscription(
        drop_id=drop_id,
        connection_id=connection_id,
        ttl=CONNECTION_TTL,
    ).save()


def unsubscribe(connection_id: str, drop_id: str) -> None:
    """Stop watching a drop's page (also fine when not watching)."""
    Subscription(drop_id=drop_id, connection_id=connection_id).delete()


def client_reply(connection_id: str, body: str | None) -> dict[str, Any]:
    """Act on one client frame and return the reply frame of docs/api.md (an error frame for anything else)."""
    try:
        action, drop_id = _parse_client_frame(body)
    except InvalidRequestError:
        return {"type": "error", "code": "invalid_message"}
    if action == "ping":
        return {"type": "pong"}
    assert drop_id is not None
    if action == "subscribe":
        subscribe(connection_id, drop_id)
        return {"type": "subscribed", "drop_id": drop_id}
    unsubscribe(connection_id, drop_id)
    return {"type": "unsubscribed", "drop_id": drop_id}


def _parse_client_frame(body: str | None) -> tuple[str, str | None]:
    try:
        frame = json.loads(body or "")
    except ValueError:
        raise InvalidRequestError("not JSON") from None
    if not isinstance(frame, dict):
        raise InvalidRequestError("not an object")
    action = frame.get("action")
    if action == "ping" and set(frame) <= {"action"}:
        return "ping", None
    if action in ("subscribe", "unsubscribe") and set(frame) == {"action", "drop_id"}:
        drop_id = frame["drop_id"]
        if isinstance(drop_id, str) and 0 < len(drop_id) <= _MAX_DROP_ID:
            return action, drop_id
    raise InvalidRequestError("unknown action or bad fields")


def connections_of(user_id: str) -> list[str]:
    """The ids of a user's open connections."""
    return [row.connection_id for row in Connection.by_user.query(user_id)]


def subscribers_of(drop_id: str) -> list[str]:
    """The ids of the connections watching a drop."""
    return [row.connection_id for row in Subscription.query(drop_id, attributes_to_get=["connection_id"])]


def online_followers(creator_id: str) -> list[str]:
    """The open connections of the creator's followers: every connection, intersected with the follow graph.

    One parallel scan of the connections plus one BatchGet per hundred online users costs the same
    however many followers the creator has, where a query per follower grows with the audience; the
    scan is cheap because connections are few (online users, rows of ~100 bytes) and rarely read.
    """
    by_user: dict[str, list[str]] = {}
    for row in Connection.scan(attributes_to_get=["connection_id", "user_id"]):
        by_user.setdefault(row.user_id, []).append(row.connection_id)
    users = list(by_user)
    following: list[str] = []
    for start in range(0, len(users), _KEY_BATCH):
        keys = [(creator_id, user_id) for user_id in users[start : start + _KEY_BATCH]]
        following.extend(row.user_id for row in Follow.batch_get(keys, attributes_to_get=["creator_id", "user_id"]))
    return [connection_id for user_id in following for connection_id in by_user[user_id]]
