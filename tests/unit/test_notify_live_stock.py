"""Notification building blocks in-process: envelopes, frames, client frames and the live-stock coalescer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.delivery import live_stock
from chalicelib.domain import connections
from chalicelib.schema import topology
from chalicelib.schema.messages import DeliverKind, Envelope, PoisonMessageError
from chalicelib.schema.models import Subscription
from chalicelib.wiring import bootstrap
from tests.e2e.support import iso


def envelope(event_type: str, **data) -> Envelope:
    body = {"event_id": str(uuid.uuid4()), "event_type": event_type, "occurred_at": iso(), "data": data}
    return Envelope.parse(json.dumps(body))


@pytest.mark.parametrize(
    "raw",
    ["", "nope", "[]", '{"event_id": "e"}', '{"event_id": "e", "event_type": "x", "occurred_at": "soon", "data": {}}'],
)
def test_what_is_not_an_envelope_is_poison(raw) -> None:
    with pytest.raises(PoisonMessageError):
        Envelope.parse(raw)


def test_a_frame_carries_only_public_fields() -> None:
    event = envelope("order_confirmed", order_id="or_1", user_id="u_1", drop_id="dr_1", secret="x")
    frame = event.frame()
    assert frame == {
        "type": "order_confirmed",
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "data": {"order_id": "or_1", "drop_id": "dr_1"},
    }


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        ('{"action": "ping"}', {"type": "pong"}),
        ('{"action": "ping", "extra": 1}', {"type": "error", "code": "invalid_message"}),
        ('{"action": "subscribe", "drop_id": ""}', {"type": "error", "code": "invalid_message"}),
        ('{"action": "unsubscribe", "drop_id": "dr_u"}', {"type": "unsubscribed", "drop_id": "dr_u"}),
        ("null", {"type": "error", "code": "invalid_message"}),
        (None, {"type": "error", "code": "invalid_message"}),
    ],
)
def test_client_frames(body, reply) -> None:
    assert connections.client_reply("c_unit", body) == reply


class RecordingPusher:
    """A pusher that keeps the frames it is given instead of posting them to connections."""

    def __init__(self, frames: list[dict]) -> None:
        self.frames = frames

    def push(self, connection_ids, frame: dict, occurred_at_ms: int | None = None) -> None:
        self.frames.append(frame)


@pytest.fixture()
def pushed() -> Iterator[list[dict]]:
    """The frames pushed while the test runs (through the composition root's pusher)."""
    frames: list[dict] = []
    with bootstrap.override(pusher=RecordingPusher(frames)):
        yield frames


def queued_flushes(drop_id: str) -> list[str]:
    """The drops of the deferred pushes on the live_stock queue for `drop_id` (they are sent delayed by
    FLUSH_DELAY_SECONDS: the receive waits that out, bounded)."""
    sqs = bootstrap.client("sqs")
    url = bootstrap.settings().queue_url(topology.LIVE_STOCK.name)
    found: list[str] = []
    deadline = time.monotonic() + live_stock.FLUSH_DELAY_SECONDS + 10
    while not found and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("kind") == DeliverKind.STOCK_FLUSH and body.get("drop_id") == drop_id:
                found.append(body["drop_id"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def watched(drop_id: str) -> str:
    """A drop one connection watches (live stock is pushed only to a drop that has viewers)."""
    Subscription(drop_id=drop_id, connection_id=f"c_{uuid.uuid4().hex[:8]}").save()
    return drop_id


def test_a_burst_of_stock_changes_is_coalesced_and_ends_on_the_last_value(pushed) -> None:
    drop_id = watched(f"dr_unit_{uuid.uuid4().hex[:8]}")
    began = time.monotonic()
    for stock in range(99, -1, -1):
        live_stock.stock_changed(envelope("stock_changed", drop_id=drop_id, stock=stock))
    windows = (time.monotonic() - began) * 1000 / live_stock.WINDOW_MS
    # About one push per window (a slow write can stretch a window's start), never one per change.
    assert 1 <= len(pushed) <= 2 * windows + 2 < 100
    flushes = queued_flushes(drop_id)
    assert flushes == [drop_id]  # one deferred push, however many were held back
    time.sleep(live_stock.WINDOW_MS / 1000 + 0.05)
    live_stock.flush(drop_id)
    assert pushed[-1]["data"] == {"drop_id": drop_id, "stock": 0}
    # A repeat of the last event, or a flush with nothing new, shows nothing again.
    before = len(pushed)
    time.sleep(live_stock.WINDOW_MS / 1000 + 0.05)
    live_stock.flush(drop_id)
    assert len(pushed) == before


def test_a_buyer_who_connects_right_after_an_order_gets_the_next_push() -> None:
    user_id = f"u_{uuid.uuid4().hex}"
    assert connections.push_targets_of(user_id) == []  # offline: the first confirmation finds no socket
    connection_id = f"c{uuid.uuid4().hex[:12]}"
    assert connections._claim(connection_id, user_id) is None  # the page opens a socket
    assert connections.push_targets_of(user_id) == [connection_id]  # "no socket" was not remembered
    second = f"c{uuid.uuid4().hex[:12]}"
    assert connections._claim(second, user_id) is None
    # A buyer with sockets is remembered briefly: the rush's next pushes reuse the lookup.
    assert connections.push_targets_of(user_id) == [connection_id]


def test_a_deferred_push_whose_send_failed_is_queued_again_by_the_retry(pushed, monkeypatch) -> None:
    drop_id = watched(f"dr_unit_{uuid.uuid4().hex[:8]}")
    frozen = live_stock.now_ms()
    monkeypatch.setattr(live_stock, "now_ms", lambda: frozen)  # every event lands inside the first window
    live_stock.stock_changed(envelope("stock_changed", drop_id=drop_id, stock=9))  # claims the window
    held_back = envelope("stock_changed", drop_id=drop_id, stock=8)
    real_send = live_stock.send_messages

    def refused(*args, **kwargs):
        raise ConnectionError("the queue did not answer")

    monkeypatch.setattr(live_stock, "send_messages", refused)
    with pytest.raises(ConnectionError):
        live_stock.stock_changed(held_back)  # recorded and marked as queued, but never sent
    monkeypatch.setattr(live_stock, "send_messages", real_send)
    live_stock.stock_changed(held_back)  # SQS redelivers the message
    assert queued_flushes(drop_id) == [drop_id]
    # A later event inside the window finds the deferred push queued and queues none of its own.
    sent: list[object] = []
    monkeypatch.setattr(live_stock, "send_messages", lambda *args, **kwargs: sent.append(args))
    live_stock.stock_changed(envelope("stock_changed", drop_id=drop_id, stock=7))
    assert sent == []
