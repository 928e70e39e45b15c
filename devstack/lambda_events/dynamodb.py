"""DynamoDB stream records as a Lambda event source mapping delivers them."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime
from typing import Any

from devstack.identity import REGION


def _wire_attribute(value: Any) -> Any:
    """An AttributeValue as it is on the wire (boto3 decodes B/BS to bytes; Lambda events carry base64)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for kind, inner in value.items():
            if kind == "B" and isinstance(inner, bytes | bytearray):
                out[kind] = base64.b64encode(inner).decode()
            elif kind == "BS":
                out[kind] = [base64.b64encode(b).decode() if isinstance(b, bytes | bytearray) else b for b in inner]
            elif kind == "L":
                out[kind] = [_wire_attribute(v) for v in inner]
            elif kind == "M":
                out[kind] = {k: _wire_attribute(v) for k, v in inner.items()}
            else:
                out[kind] = inner
        return out
    return value


def stream_record(raw: dict[str, Any], stream_arn: str, *, from_wire: bool = False) -> dict[str, Any]:
    """A GetRecords record turned into the record of a Lambda DynamoDB stream event: as boto3 returns it, or
    `from_wire` as the service wrote it (devstack.pollers.wire), whose attribute values are already in
    the event's shape."""
    dynamodb = dict(raw.get("dynamodb", {}))
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        # boto3 parses the timestamp; Lambda events carry epoch seconds (whole seconds, as a number).
        dynamodb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    elif isinstance(created, int | float):
        dynamodb["ApproximateCreationDateTime"] = float(int(created))  # as the wire carries it
    elif created is None:
        dynamodb["ApproximateCreationDateTime"] = float(int(time.time()))
    for key in ("Keys", "NewImage", "OldImage"):
        if key in dynamodb and not from_wire:
            dynamodb[key] = {name: _wire_attribute(v) for name, v in dynamodb[key].items()}
    record = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventVersion": raw.get("eventVersion", "1.1"),
        "dynamodb": dynamodb,
        "awsRegion": raw.get("awsRegion", REGION),
        "eventName": raw["eventName"],
        # moto leaves this out; Lambda sets it to the stream's ARN.
        "eventSourceARN": stream_arn,
        "eventSource": "aws:dynamodb",
    }
    if "userIdentity" in raw:
        record["userIdentity"] = raw["userIdentity"]
    return record
