"""The Lambda events the dev stack builds, checked alone (no server): shapes of the AWS samples, bodies intact."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from devstack import identity
from devstack.lambda_events.apigateway import rest_event
from devstack.lambda_events.dynamodb import stream_record
from devstack.lambda_events.scheduled import scheduled_event
from devstack.lambda_events.websocket import WebSocketApi, connect_event, disconnect_event, message_event
from devstack.ws_connections import Connection

EVENTS = Path(__file__).resolve().parents[1] / "events"
API = WebSocketApi(api_id="devws00001", stage="api", domain_name="127.0.0.1:9", port=8)


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _connection() -> Connection:
    return Connection("AbCdEfGhIjKlMnO=", "127.0.0.1", "test", connected_at=1, last_active=1)


def _rest(body: bytes | None, content_type: str = "application/json") -> dict[str, Any]:
    return rest_event(
        "POST",
        "/drops/d1/orders?x=1&x=2",
        {"Content-Type": content_type, "Host": "127.0.0.1:8"},
        body,
        resource="/drops/{drop_id}/orders",
        path_parameters={"drop_id": "d1"},
        claims={"sub": "u1"},
        stage="api",
    )


def test_a_rest_event_has_the_keys_of_api_gateways_proxy_event() -> None:
    sample = _sample("apigw-rest-proxy.json")
    event = _rest(b'{"quantity": 1}')
    assert set(event) == set(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert event["requestContext"]["accountId"] == identity.ACCOUNT_ID
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert (event["path"], event["requestContext"]["path"]) == ("/drops/d1/orders", "/api/drops/d1/orders")


@given(st.binary(max_size=64), st.sampled_from(["application/json", "text/plain", "image/png", ""]))
def test_a_rest_events_body_carries_the_request_bytes_unchanged(body: bytes, content_type: str) -> None:
    event = _rest(body, content_type)
    if not body:
        assert event["body"] is None and event["isBase64Encoded"] is False
        return
    sent = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode("utf-8")
    assert sent == body


def test_websocket_events_have_the_keys_of_api_gateways_samples() -> None:
    conn = _connection()
    connect = connect_event(API, conn, [("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", "websocket")], "/n")
    assert set(connect) == set(_sample("apigw-websocket-connect.json"))
    assert {"Connection", "Upgrade"}.isdisjoint(connect["headers"])  # hop-by-hop headers are not forwarded
    message = message_event(API, conn, "hi")
    assert set(message) == set(_sample("apigw-websocket-message.json"))
    assert set(message["requestContext"]) == set(_sample("apigw-websocket-message.json")["requestContext"])
    disconnect = disconnect_event(API, conn, 1001, "Going away")
    assert set(disconnect) == set(_sample("apigw-websocket-disconnect.json"))
    contexts = [e["requestContext"] for e in (connect, message, disconnect)]
    assert {(c["connectionId"], c["apiId"], c["stage"], c["domainName"]) for c in contexts} == {
        (conn.connection_id, "devws00001", "api", "127.0.0.1:9")
    }


@given(st.binary(max_size=64))
def test_a_binary_websocket_message_reaches_the_handler_as_base64(data: bytes) -> None:
    event = message_event(API, _connection(), data)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == data


attribute_values = st.recursive(
    st.one_of(
        st.builds(lambda s: {"S": s}, st.text(max_size=5)),
        st.builds(lambda b: {"B": b}, st.binary(max_size=5)),
        st.builds(lambda bs: {"BS": bs}, st.lists(st.binary(max_size=5), max_size=3)),
    ),
    lambda inner: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
        st.builds(lambda fields: {"M": fields}, st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    ),
    max_leaves=8,
)


def _decoded(value: Any) -> Any:
    """A wire AttributeValue back as boto3 gives it (bytes for B and BS)."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b) for b in inner]}
    if kind == "L":
        return {"L": [_decoded(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _decoded(v) for k, v in inner.items()}}
    return value


@given(st.dictionaries(st.text(min_size=1, max_size=4), attribute_values, max_size=4))
def test_a_stream_record_carries_binary_attributes_as_base64_at_any_depth(image: dict[str, Any]) -> None:
    raw = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "a"}}, "NewImage": image, "SequenceNumber": "1"}}
    record = stream_record(raw, "arn:stream")
    json.dumps(record)  # what Lambda delivers is JSON: no bytes left anywhere
    assert {k: _decoded(v) for k, v in record["dynamodb"]["NewImage"].items()} == image
    assert (record["awsRegion"], record["eventSourceARN"]) == (identity.REGION, "arn:stream")


def test_a_scheduled_event_names_its_rule_in_the_fake_account() -> None:
    event = scheduled_event("sweeper")
    assert event["resources"] == [identity.rule_arn("sweeper")]
    assert (event["account"], event["region"], event["detail-type"]) == (
        identity.ACCOUNT_ID,
        identity.REGION,
        "Scheduled Event",
    )
