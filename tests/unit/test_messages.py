"""The Envelope in-process: what parse accepts and refuses, serialize and parse round-trip, frames."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.validation import MAX_TIME_MS, MIN_TIME_MS
from chalicelib.schema.messages import FRAME_FIELDS, Envelope, EventType, FrameType, PoisonMessageError, reply_frame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
data = st.dictionaries(st.text(), json_values, max_size=5)


@given(
    event_id=st.text(min_size=1),
    event_type=st.sampled_from(list(EventType)),
    at_ms=st.integers(MIN_TIME_MS, MAX_TIME_MS),
    payload=data,
)
def test_an_envelope_survives_serialize_and_parse(event_id, event_type, at_ms, payload) -> None:
    envelope = Envelope.new(event_id, event_type, at_ms, payload)
    again = Envelope.parse(envelope.serialize())
    assert again == envelope and again.as_dict() == envelope.as_dict() == json.loads(envelope.serialize())
    assert again.occurred_at_ms == at_ms and type(again.event_type) is str


@given(st.one_of(json_values, st.text(), st.binary()))
def test_anything_else_is_poison_and_nothing_worse(raw) -> None:
    try:
        envelope = Envelope.parse(raw)
    except PoisonMessageError:
        return
    # Whatever parses is a whole envelope.
    assert isinstance(envelope.event_id, str) and envelope.event_id and isinstance(envelope.data, dict)


@given(payload=data)
def test_a_frame_carries_only_public_fields_unless_told_otherwise(payload) -> None:
    envelope = Envelope.new("ev_1", FrameType.ADMITTED, 0, payload)
    frame = envelope.frame()
    assert frame["type"] == "admitted" and set(frame["data"]) <= set(FRAME_FIELDS)
    assert envelope.frame(fields=None)["data"] == payload


def test_an_envelope_reads_as_the_mapping_it_is_published_as() -> None:
    envelope = Envelope.new("ev_1", EventType.SOLD_OUT, 0, {"drop_id": "dr_1", "stock": 0})
    assert dict(envelope) == json.loads(envelope.serialize()) == envelope
    assert envelope["event_type"] == "sold_out" and envelope["occurred_at"] == "1970-01-01T00:00:00.000Z"


def test_reply_frames() -> None:
    assert reply_frame(FrameType.PONG) == {"type": "pong"}
    assert json.dumps(reply_frame(FrameType.SUBSCRIBED, drop_id="dr_1")) == '{"type": "subscribed", "drop_id": "dr_1"}'
