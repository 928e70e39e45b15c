"""A deliver batch reads the people of all its reach messages at once (chalicelib.delivery.reach.read_ahead),
and sends exactly what each message would have sent on its own: each e-mail once."""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib.delivery import mailer, reach
from chalicelib.domain import preferences
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
