"""What reaches users: inbox rows, WebSocket connections and subscriptions, handled events, e-mail and
Web Push preferences and subscriptions."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.schema.models.base import _index_meta, _meta


class UnreadNotifications(GlobalSecondaryIndex["Notification"]):
    """Sparse: only unread rows carry `unread_user`, so the unread count reads the unread rows only."""

    Meta = _index_meta("unread", KeysOnlyProjection())
    unread_user = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)


class Notification(Model):
    """Inbox row; the sort key embeds the event id so a redelivery overwrites, never duplicates."""

    Meta = _meta("Notifications")
    user_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)
    notification_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    drop_id = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    payload = UnicodeAttribute(default="{}")
    read = BooleanAttribute(default=False)
    unread_user = UnicodeAttribute(null=True)  # the user_id while unread (the `unread` index's key)
    created_at = NumberAttribute()
    ttl = TTLAttribute(null=True)
    unread = UnreadNotifications()


class ConnectionsByUser(GlobalSecondaryIndex["Connection"]):
    Meta = _index_meta("by_user", KeysOnlyProjection())
    user_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


class Connection(Model):
    Meta = _meta("Connections")
    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    connected_at = NumberAttribute()
    ttl = TTLAttribute(null=True)
    # How many drops this connection watches; moves with each Subscription row in one transaction.
    subscriptions = NumberAttribute(null=True)
    # Only on a user's quota row (connection_id "quota#<user_id>", no user_id, chalicelib.domain.connections):
    # the ids of the user's open connections, each added in the transaction that stores its row.
    held = UnicodeSetAttribute(null=True)
    by_user = ConnectionsByUser()


class SubscriptionsByConnection(GlobalSecondaryIndex["Subscription"]):
    Meta = _index_meta("by_connection", KeysOnlyProjection())
    connection_id = UnicodeAttribute(hash_key=True)
    drop_id = UnicodeAttribute(range_key=True)


class Subscription(Model):
    """A connection watching a drop page (live stock)."""

    Meta = _meta("Subscriptions")
    drop_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)
    ttl = TTLAttribute(null=True)
    by_connection = SubscriptionsByConnection()


class ProcessedEvent(Model):
    """`consumer#event_id` markers that make every stream/queue consumer idempotent."""

    Meta = _meta("ProcessedEvents")
    event_key = UnicodeAttribute(hash_key=True)
    processed_at = NumberAttribute()
    ttl = TTLAttribute(null=True)


class NotificationPreference(Model):
    """A user's switches per channel and event (`email_drop_started`, ...); absent: the default."""

    Meta = _meta("NotificationPreferences")
    user_id = UnicodeAttribute(hash_key=True)
    email_drop_started = BooleanAttribute(null=True)
    email_order_confirmed = BooleanAttribute(null=True)
    email_draw_won = BooleanAttribute(null=True)
    web_push_drop_started = BooleanAttribute(null=True)
    web_push_order_confirmed = BooleanAttribute(null=True)
    web_push_draw_won = BooleanAttribute(null=True)
    updated_at = NumberAttribute(null=True)
    has_push = BooleanAttribute(null=True)  # set once the user stores a push subscription


class WebPushSubscription(Model):
    """A browser's PushSubscription; the sort key is a digest of its endpoint, so a re-subscribe overwrites."""

    Meta = _meta("PushSubscriptions")
    user_id = UnicodeAttribute(hash_key=True)
    endpoint_id = UnicodeAttribute(range_key=True)
    endpoint = UnicodeAttribute()
    p256dh = UnicodeAttribute()
    auth = UnicodeAttribute()
    created_at = NumberAttribute()
