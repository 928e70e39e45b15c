"""A deliver batch reads the people of all its reach messages at once (chalicelib.delivery.reach.read_ahead),
and sends exactly what each message would have sent on its own: each e-mail once."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from chalicelib.core import aws, budget
from chalicelib.core.config import get_settings
from chalicelib.delivery import consumers, mailer, reach
from chalicelib.domain import preferences
from chalicelib.schema import topology
from chalicelib.schema.messages import DeliverKind, Envelope


def _message(users: list[str]) -> dict[str, Any]:
    event = Envelope.new(str(uuid.uuid4()), "draw_won", 1_800_000_000_000, {"drop_id": "dr_1"})
    return {"kind": DeliverKind.REACH.value, "items": [{"event": event.as_dict(), "user_ids": users}]}


def test_a_batch_reads_its_people_once_and_sends_what_each_message_would(monkeypatch) -> None:
    reads: list[list[str]] = []
    read = preferences.of_users
    monkeypatch.setattr(preferences, "of_users", lambda users: reads.append(sorted(users)) or read(users))
    monkeypatch.setattr(reach, "_addresses", lambda users: {u: f"{u}@example.com" for u in users if u != "u_none"})
    sent: list[str] = []
    monkeypatch.setattr(mailer, "send", lambda email: sent.append(email.to))
    messages = [_message(["u_a", "u_b"]), _message(["u_c"]), _message(["u_a", "u_none"])]

    with reach.read_ahead([*messages, {"kind": "reach"}, "not a message"]):  # the unreadable are left alone
        for message in messages:
            reach.deliver_message(message)
    assert reads == [["u_a", "u_b", "u_c", "u_none"]]
    assert sorted(sent) == ["u_a@example.com", "u_a@example.com", "u_b@example.com", "u_c@example.com"]

    # Without the read-ahead each message reads its own; the sends were claimed, so none goes twice.
    for message in messages:
        reach.deliver_message(message)
    assert len(reads) == 4 and len(sent) == 4
    # A message naming someone the read-ahead did not read reads its own people.
    with reach.read_ahead([messages[1]]):
        reach.deliver_message(_message(["u_d"]))
    assert reads[-1] == ["u_d"] and sent[-1] == "u_d@example.com"


class _Clock:
    """The budget's clock, moved by the work itself: each message handled takes 0.1 s of it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


class _Context:
    """A Lambda context with one second left: the batch's budget is half of it."""

    def get_remaining_time_in_millis(self) -> int:
        return 1000


def _deliver_batch(count: int, people: int = 10) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"rh{n}",
                "body": json.dumps({**_message([f"u_{n}_{p}" for p in range(people)]), "n": n}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:livedrop-unit-deliver",
                "awsRegion": "us-east-1",
            }
            for n in range(count)
        ]
    }


def _queued_bodies() -> list[dict[str, Any]]:
    sqs, url = aws.client("sqs"), get_settings().queue_url(topology.DELIVER.name)
    bodies: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in got]
        )
    return bodies


def test_a_deliver_batch_starts_only_what_its_time_holds_and_puts_the_rest_back_on_the_queue(monkeypatch) -> None:
    _queued_bodies()  # an empty queue to start with
    clock, handled = _Clock(), []
    monkeypatch.setattr(budget, "time", clock)
    monkeypatch.setattr(consumers, "deliver", lambda message: handled.append(message["n"]) or clock.spend(0.1))

    response = consumers.handle_deliver_batch(_deliver_batch(10), _Context())

    # Ten people a message: steps of two (25 people at most). The first took 0.2 s of the 0.5 s budget,
    # the second ended at 0.4 s: a third would not fit.
    assert response == {"batchItemFailures": []}
    assert sorted(handled) == [0, 1, 2, 3]
    assert sorted(body["n"] for body in _queued_bodies()) == list(range(4, 10))


def test_a_step_holds_many_small_messages_and_a_big_one_alone(monkeypatch) -> None:
    _queued_bodies()
    steps: list[list[int]] = []
    read_ahead = reach.read_ahead

    def reading(messages: Any) -> Any:
        steps.append([m["n"] for m in messages])
        return read_ahead(messages)

    monkeypatch.setattr(reach, "read_ahead", reading)
    monkeypatch.setattr(consumers, "deliver", lambda message: None)
    small, big = _deliver_batch(4, people=1)["Records"], _deliver_batch(6, people=25)["Records"]
    big = [
        {**record, "messageId": f"b{n}", "body": json.dumps({**json.loads(record["body"]), "n": 10 + n})}
        for n, record in enumerate(big)
    ]
    assert consumers.handle_deliver_batch({"Records": small + big[:2]}, None) == {"batchItemFailures": []}
    assert steps == [[0, 1, 2, 3], [10], [11]]


def test_deliver_messages_that_cannot_be_put_back_are_reported_failed_for_the_queue_to_redeliver(monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(budget, "time", clock)
    monkeypatch.setattr(consumers, "deliver", lambda message: clock.spend(0.2))

    def refused(queue: Any, messages: Any, delay_seconds: int = 0) -> None:
        raise RuntimeError("the queue is down")

    monkeypatch.setattr(consumers, "send_messages", refused)
    response = consumers.handle_deliver_batch(_deliver_batch(5), _Context())
    # The first step (two messages) took 0.4 s: the other three go back, or, refused, are reported.
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{n}"} for n in (2, 3, 4)]}
