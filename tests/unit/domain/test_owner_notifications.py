"""A creator's owner hears of their own drop's start, low stock and sell-out: one inbox row per event and
a push to their open connections, whether or not they follow their own creator, and never twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.config import Settings
from chalicelib.core.validation import format_time
from chalicelib.delivery import notifications
from chalicelib.domain import follows
from chalicelib.schema.db import now_ms
from chalicelib.schema.messages import DROP_EVENTS, OWNER_EVENTS, Envelope, EventType
from chalicelib.schema.models import Connection, Notification
from chalicelib.wiring import bootstrap
from tests.unit.domain.shop import examples, new_drop, new_shop, new_user

FAST = settings(
    max_examples=examples(5), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module", autouse=True)
def mail_sender(in_process_aws: Settings) -> None:
    """The SES identity a deployment verifies: follower slices e-mail those who opted in to drop_started."""
    bootstrap.client("ses").verify_domain_identity(Domain=in_process_aws.email_domain)


class TargetsPusher:
    """Keeps the connections each push was addressed to (as the real pusher would send them: once each)."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    def push(self, connection_ids: Iterable[str], frame: dict, occurred_at_ms: int | None = None) -> None:
        self.sent.append(list(dict.fromkeys(connection_ids)))


def drop_event(event_type: str, drop: dict) -> Envelope:
    at = now_ms()
    data = {"drop_id": drop["drop_id"], "creator_id": drop["creator_id"], "product_id": drop["product_id"], "stock": 3}
    return Envelope(str(uuid.uuid4()), event_type, format_time(at) or "", at, data)


def deliver_everything(event: Envelope, creator_id: str) -> TargetsPusher:
    """The notify consumer's work for one event, then every follower slice it queues, as deliver does."""
    pusher = TargetsPusher()
    with bootstrap.override(pusher=pusher):
        notifications.notify_drop_audience(event)
        slices = notifications.audience_of(creator_id).slices
        for part in follows.follower_slices(slices) if slices else []:
            notifications.deliver_slice(notifications.slice_message(event, creator_id, part.low, part.high, None))
    return pusher


def rows_of(user_id: str) -> list[Notification]:
    return list(Notification.query(user_id, consistent_read=True))


@FAST
@given(event_type=st.sampled_from(DROP_EVENTS), owner_follows=st.booleans(), online=st.booleans())
def test_the_owner_gets_one_row_and_one_push_of_their_drops_start_low_stock_and_sell_out(
    event_type, owner_follows, online
) -> None:
    shop = new_shop()
    drop = new_drop(shop)
    fan = new_user()
    follows.follow(fan, shop.creator_id)
    if owner_follows:
        follows.follow(shop.owner, shop.creator_id)
    socket = f"c_{uuid.uuid4().hex}"
    if online:
        Connection(connection_id=socket, user_id=shop.owner, connected_at=now_ms()).save()
    event = drop_event(event_type, drop)

    pusher = deliver_everything(event, shop.creator_id)
    deliver_everything(event, shop.creator_id)  # a redelivery changes nothing

    told = event_type in OWNER_EVENTS or owner_follows
    assert [row.notification_id for row in rows_of(shop.owner)] == ([event.event_id] if told else [])
    assert [row.notification_id for row in rows_of(fan)] == [event.event_id]
    (targets,) = pusher.sent
    assert targets.count(socket) == (1 if told and online else 0)


def test_the_owners_stock_low_row_carries_the_stock_it_fell_to() -> None:
    shop = new_shop()
    event = drop_event(EventType.STOCK_LOW, new_drop(shop))
    deliver_everything(event, shop.creator_id)
    (item,) = notifications.inbox(shop.owner, 10, None)["items"]
    assert (item["type"], item["drop_id"], item["data"]["stock"]) == ("stock_low", event.data["drop_id"], 3)


def test_an_event_of_a_creator_that_is_gone_tells_no_owner() -> None:
    assert (
        notifications.owner_to_tell(
            drop_event(EventType.SOLD_OUT, {"drop_id": "dr_x", "creator_id": "cr_x", "product_id": "pr_x"}), None
        )
        is None
    )
    assert notifications.audience_of("cr_gone").owner is None


def test_a_creator_without_followers_queues_no_follower_slices_and_one_with_a_follower_does(monkeypatch) -> None:
    queued: list[dict] = []
    monkeypatch.setattr(notifications, "enqueue_deliveries", lambda messages, delay_seconds=0: queued.extend(messages))
    shop = new_shop()
    event = drop_event(EventType.DROP_STARTED, new_drop(shop))
    deliver_everything(event, shop.creator_id)
    assert queued == []  # nobody follows: no slice to read, no invocation to run
    fan = new_user()
    follows.follow(fan, shop.creator_id)
    deliver_everything(event, shop.creator_id)
    assert len(queued) == notifications.MIN_SLICES
    follows.unfollow(fan, shop.creator_id)
    deliver_everything(event, shop.creator_id)
    assert len(queued) == notifications.MIN_SLICES  # back to none
