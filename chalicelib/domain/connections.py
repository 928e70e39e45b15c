"""WebSocket connections and drop-page subscriptions: who is online, and who watches which drop.

Like API Gateway's own quotas, a user holds at most MAX_CONNECTIONS_PER_USER sockets and a socket
watches at most MAX_SUBSCRIPTIONS_PER_CONNECTION drops (docs/limits-and-faults.md).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import size

from chalicelib.core import ports
from chalicelib.core.cache import TtlCache
from chalicelib.core.errors import (
    DropNotFoundError,
    InvalidRequestError,
    LiveDropError,
    TooManyConnectionsError,
    TooManySubscriptionsError,
    TryAgainError,
)
from chalicelib.core.validation import command_from, parse_json_object
from chalicelib.domain.catalog import drop_terms
from chalicelib.domain.tokens import verifier
from chalicelib.schema.commands import Watch
from chalicelib.schema.db import Transaction, TransactionCancelledError, batch_get, is_transient, now_ms
from chalicelib.schema.messages import FrameType, reply_frame
from chalicelib.schema.models import Connection, Follow, Subscription

log = logging.getLogger("livedrop.connections")
# API Gateway closes a WebSocket after 2 h; rows outlive it a little so TTL never races a live socket.
CONNECTION_TTL = timedelta(hours=2, minutes=10)
MAX_CONNECTIONS_PER_USER = 10
MAX_SUBSCRIPTIONS_PER_CONNECTION = 50
# A buyer's connections as a push last found them: a rush's orders of one buyer, and the several order
# events of one order, cost one lookup. Only a buyer with open sockets is remembered: "no socket" is
# never cached, so a buyer who opens the page right after an order gets the next push. Bounded
# staleness: a second socket opened meanwhile misses a push for at most this long (the first one gets
# it, the inbox row is the durable copy); a socket closed meanwhile answers 410 and is forgotten.
PUSH_LOOKUP_TTL_SECONDS = 3.0
_push_lookups: TtlCache[list[str]] = TtlCache("connections_of", PUSH_LOOKUP_TTL_SECONDS, max_items=10_000)
# A drop's viewers as the last live-stock push found them: pushes come every WINDOW_MS (250 ms) in a rush,
# the viewers change far less often; a new viewer has just read the drop's stock with the page anyway.
VIEWERS_TTL_SECONDS = 1.0
_viewers: TtlCache[list[str]] = TtlCache("subscribers_of", VIEWERS_TTL_SECONDS, max_items=1_000)


def open_connection(connection_id: str, token: str | None) -> str:
    """Store the connection of the user the token names; UnauthorizedError for a bad or missing token,
    TooManyConnectionsError when the user already holds MAX_CONNECTIONS_PER_USER open sockets.

    The cap is held by the user's quota row, whose set of connection ids grows in the same transaction
    that stores the connection's row, on condition that it holds fewer than the cap: racing handshakes
    cannot all pass a count they read before any of them wrote."""
    user_id = verifier().claims(token)["sub"]
    held = _claim(connection_id, user_id)
    if held is not None and _forget_gone(user_id, held):
        held = _claim(connection_id, user_id)
    if held is not None:
        raise TooManyConnectionsError(f"at most {MAX_CONNECTIONS_PER_USER} open connections per user")
    return user_id


QUOTA_PREFIX = "quota#"  # a quota row's key; API Gateway's connection ids never hold a '#'
# A connection this young may still be in its $connect (API Gateway says it is gone until then).
HANDSHAKE_GRACE = timedelta(seconds=30)


def _quota_row(user_id: str) -> Connection:
    return Connection(connection_id=QUOTA_PREFIX + user_id)


def _claim(connection_id: str, user_id: str) -> set[str] | None:
    """Store the connection and add it to the user's quota in one transaction; None when it was
    stored (or already was: a retried $connect), else the ids the full quota holds."""
    tx = Transaction()
    tx.put(
        "connection",
        Connection(connection_id=connection_id, user_id=user_id, connected_at=now_ms(), ttl=CONNECTION_TTL),
        Connection.connection_id.does_not_exist(),
    )
    room = Connection.held.does_not_exist() | (size(Connection.held) < MAX_CONNECTIONS_PER_USER)
    tx.update("quota", _quota_row(user_id), [Connection.held.add({connection_id})], room, return_old=True)
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("connection"):
            return None  # this connection is stored and counted already
        if cancelled.failed("quota"):
            old = cancelled.old_item("quota") or {}
            return set(old.get("held", {}).get("SS", []))
        raise
    return None


def _forget_gone(user_id: str, held: set[str]) -> bool:
    """Forget the held connections that are closed (their $disconnect never reached us, or their row
    outlived by TTL); True if any was. A connection still in its handshake is never taken for gone."""
    settled = now_ms() - int(HANDSHAKE_GRACE.total_seconds() * 1000)
    is_gone = ports.pusher().is_gone
    forgot = False
    for connection_id in sorted(held):
        try:
            row = Connection.get(connection_id, consistent_read=True)
        except Connection.DoesNotExist:
            row = None
        if row is None:
            _release(connection_id, user_id)
            forgot = True
        elif int(row.connected_at or 0) < settled and is_gone(connection_id):
            close_connection(connection_id)
            forgot = True
    return forgot


def _release(connection_id: str, user_id: str) -> None:
    """Take a connection out of its user's quota (never creating a quota row)."""
    try:
        _quota_row(user_id).update(
            [Connection.held.delete({connection_id})], condition=Connection.connection_id.exists()
        )
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise


def close_connection(connection_id: str) -> None:
    """Forget a connection, every subscription it held and its place in its user's quota (also fine
    when already gone: only the call that deletes the row releases the place)."""
    drops = [row.drop_id for row in Subscription.by_connection.query(connection_id)]
    if drops:
        with Subscription.batch_write() as batch:
            for drop_id in drops:
                batch.delete(Subscription(drop_id=drop_id, connection_id=connection_id))
    old = Connection._get_connection().delete_item(connection_id, return_values="ALL_OLD").get("Attributes", {})
    user_id = old.get("user_id", {}).get("S")
    if user_id:
        _release(connection_id, user_id)


def subscribe(connection_id: str, drop_id: str) -> None:
    """Watch a drop's page from this connection (live stock); watching it again changes nothing.

    DropNotFoundError for a drop that does not exist, TooManySubscriptionsError past the cap."""
    drop_terms(drop_id)
    tx = Transaction()
    tx.put(
        "subscription",
        Subscription(drop_id=drop_id, connection_id=connection_id, ttl=CONNECTION_TTL),
        Subscription.connection_id.does_not_exist(),
    )
    below_cap = Connection.subscriptions.does_not_exist() | (
        Connection.subscriptions < MAX_SUBSCRIPTIONS_PER_CONNECTION
    )
    tx.update(
        "connection",
        Connection(connection_id=connection_id),
        [Connection.subscriptions.add(1)],
        Connection.connection_id.exists() & below_cap,
        return_old=True,
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("subscription"):
            return  # already watching
        if cancelled.failed("connection") and cancelled.old_item("connection"):
            raise TooManySubscriptionsError(
                f"at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection"
            ) from None
        raise


def unsubscribe(connection_id: str, drop_id: str) -> None:
    """Stop watching a drop's page (also fine when not watching)."""
    tx = Transaction()
    tx.delete("subscription", Subscription(drop_id=drop_id, connection_id=connection_id), Subscription.drop_id.exists())
    tx.update(
        "connection",
        Connection(connection_id=connection_id),
        [Connection.subscriptions.add(-1)],
        Connection.connection_id.exists(),
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("subscription"):
            return  # not watching
        if cancelled.failed("connection"):  # the connection is being forgotten: drop the row alone
            Subscription(drop_id=drop_id, connection_id=connection_id).delete()
            return
        raise


def client_reply(connection_id: str, body: str | None) -> dict[str, Any]:
    """Act on one client frame and return the reply frame of docs/api.md (an error frame for anything else)."""
    try:
        action, drop_id = _parse_client_frame(body)
    except InvalidRequestError:
        return reply_frame(FrameType.ERROR, code="invalid_message")
    if action == "ping":
        return reply_frame(FrameType.PONG)
    assert drop_id is not None
    try:
        if action == "subscribe":
            subscribe(connection_id, drop_id)
            return reply_frame(FrameType.SUBSCRIBED, drop_id=drop_id)
        unsubscribe(connection_id, drop_id)
    except (DropNotFoundError, TooManySubscriptionsError, TryAgainError) as refused:
        return _error_frame(refused, drop_id)
    except Exception as error:
        if not is_transient(error):
            raise
        return _error_frame(TryAgainError("the service is busy, try again"), drop_id)
    return reply_frame(FrameType.UNSUBSCRIBED, drop_id=drop_id)


def _error_frame(error: LiveDropError, drop_id: str) -> dict[str, Any]:
    return reply_frame(FrameType.ERROR, code=error.code, message=error.message, drop_id=drop_id)


def _parse_client_frame(body: str | None) -> tuple[str, str | None]:
    frame = parse_json_object(body, "frame")
    action = frame.pop("action", None)
    if action == "ping" and not frame:
        return "ping", None
    if action in ("subscribe", "unsubscribe"):
        return action, command_from(frame, Watch).drop_id
    raise InvalidRequestError("unknown action or bad fields")


def connections_of(user_id: str) -> list[str]:
    """The ids of a user's open connections."""
    return [row.connection_id for row in Connection.by_user.query(user_id)]


def quota_key(user_id: str) -> dict[str, str]:
    """The key of a user's quota row, whose `held` set names their open connections (for a batch read)."""
    return {"connection_id": QUOTA_PREFIX + user_id}


def held_by(quota_items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The open connections each quota row read by key (db.batch_get) names, by user id."""
    return {
        str(item["connection_id"]).removeprefix(QUOTA_PREFIX): sorted(item.get("held") or ()) for item in quota_items
    }


def held_connections(user_ids: list[str]) -> dict[str, list[str]]:
    """The open connections of many users at once, by user id: their quota rows, one BatchGetItem per 100."""
    items = batch_get(
        {Connection: [quota_key(user_id) for user_id in user_ids]}, {Connection: ["connection_id", "held"]}
    )
    return held_by(items[Connection])


def release(connection_id: str, user_id: str) -> None:
    """Take a connection that answered gone out of its user's quota (close_connection does it only
    while the connection's row exists; an expired row leaves the id in the quota)."""
    _release(connection_id, user_id)


def push_targets_of(user_id: str) -> list[str]:
    """A user's open connections for a push: connections_of, cached for PUSH_LOOKUP_TTL_SECONDS when there
    are any (never for the connection quota, which must see every socket)."""
    return _push_lookups.get_or_load(user_id, lambda: connections_of(user_id), keep=bool)


def subscribers_of(drop_id: str) -> list[str]:
    """The ids of the connections watching a drop."""
    return [row.connection_id for row in Subscription.query(drop_id, attributes_to_get=["connection_id"])]


def viewers_of(drop_id: str) -> list[str]:
    """A drop's viewers for a live-stock push: subscribers_of, cached for VIEWERS_TTL_SECONDS."""
    return _viewers.get_or_load(drop_id, lambda: subscribers_of(drop_id))


def online_followers(creator_id: str) -> list[str]:
    """The open connections of the creator's followers: every connection, intersected with the follow graph.

    One parallel scan of the connections plus one BatchGet per hundred online users costs the same
    however many followers the creator has, where a query per follower grows with the audience; the
    scan is cheap because connections are few (online users, rows of ~100 bytes) and rarely read.
    """
    by_user: dict[str, list[str]] = {}
    # Quota rows have no user_id: only connections are read.
    for row in Connection.scan(Connection.user_id.exists(), attributes_to_get=["connection_id", "user_id"]):
        by_user.setdefault(row.user_id, []).append(row.connection_id)
    keys = [{"creator_id": creator_id, "user_id": user_id} for user_id in by_user]
    following = batch_get({Follow: keys}, {Follow: ["user_id"]})[Follow]
    return [connection_id for row in following for connection_id in by_user[row["user_id"]]]
