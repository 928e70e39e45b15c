"""The embedded DynamoDB's hot operations answer without moto's generic response serializer (devstack.moto_dynamodb
installs this).

moto 5.2.5 turns every result into JSON with `moto.core.serialize`: for each member of the botocore output shape
it asks a chain of alias providers which key of the result holds it, down to every attribute value of every item.
During an order rush that was 39% of the DynamoDB process's CPU. The dicts moto's DynamoDB handler returns for the
operations in OPERATIONS are already in wire shape, so this walks them once against the same output shape, doing
what the serializer does: a member that is None or missing is left out, a key that is no member is dropped, a blob
(B, BS: bytes after moto's parameter parsing) is base64-encoded, a string is str(), an integer int() and a double
float(); empty lists and maps stay; members come out in the shape's order, so the body is the same bytes (moto's
`amz_crc32` then computes x-amz-crc32 over it, and adds x-amzn-requestid, as before).

Anything else goes to moto's serializer, which answers as it always did: errors, other operations, another
protocol, a result that is not a plain dict, a key that one of the serializer's aliases could pick up, or any
value the walk does not expect (it gives up; it never guesses). Stream records' creation times (datetimes) are
written as the serializer writes them, epoch seconds to the millisecond.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

OPERATIONS = frozenset(
    ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"]
    + ["BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"]
    + ["GetRecords"]  # DynamoDB Streams: each stream pump's poll, every record's old and new image
)

Serialize = Callable[[Any], Any]
# Each operation's (service model, output walk, status, content type); None: moto's serializer answers it.
_PLANS: dict[tuple[str, str], tuple[Any, Serialize, int, str] | None] = {}
_DROP = object()  # a structure that was None: left out of a map, kept as None in a list (as the serializer does)
_EMPTY: tuple[Any, ...] = (None, {}, [])


class _Unsupported(Exception):
    """A value the walk does not reproduce: moto's serializer answers the request."""


def install() -> None:
    """Serve the successful responses of OPERATIONS with `respond`, in this process (moto's DynamoDB and
    DynamoDB Streams handlers only)."""
    for handler_class in _handler_classes():
        if not getattr(handler_class.serialized, "fast_json", False):
            handler_class.serialized = _fast(handler_class.serialized)


def _handler_classes() -> tuple[Any, ...]:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    return DynamoHandler, DynamoDBStreamsHandler


def _fast(generic: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def serialized(self: Any, action_result: Any) -> Any:
        answer = respond(self, action_result)
        return answer if answer is not None else generic(self, action_result)

    serialized.fast_json = True  # type: ignore[attr-defined]
    return serialized


def respond(handler: Any, action_result: Any) -> tuple[int, dict[str, Any], str] | None:
    """What moto's `handler.serialized(action_result)` returns, or None where moto's serializer must answer."""
    from moto import settings
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    if type(action_result) not in (ActionResult, DynamoResult) or type(action_result.result) is not dict:
        return None
    action = handler._get_action()
    if action not in OPERATIONS or handler.RESPONSE_KEY_PATH_TO_TRANSFORMER:
        return None
    key = (handler.boto3_service_name, action)
    if key not in _PLANS:
        _PLANS[key] = _plan(*key)
    plan = _PLANS[key]
    if plan is None:
        return None
    service_model, serialize, status, content_type = plan
    try:
        if handler.determine_response_protocol(service_model) != "json":
            return None
        output = serialize(action_result.result)
        body = json.dumps(output, indent=4 if settings.PRETTIFY_RESPONSES else None)
    except Exception:  # _Unsupported, or what would fail in moto's serializer too: it answers (or fails) as before
        return None
    headers: dict[str, Any] = {"Content-Type": content_type}
    headers.update(handler.response_headers)
    return status, headers, body


def _plan(service_name: str, action: str) -> tuple[Any, Serialize, int, str] | None:
    from moto.core.serialize import JSONSerializer, get_serializer_class
    from moto.core.utils import get_service_model

    service_model = get_service_model(service_name)
    operation_model = service_model.operation_model(action)
    output_shape = operation_model.output_shape
    serializer = get_serializer_class(service_model.service_name, "json")
    if serializer is not JSONSerializer or output_shape is None or operation_model.has_event_stream_output:
        return None
    content_type = serializer(operation_model)._get_protocol_specific_content_type()
    status = operation_model.http.get("responseCode", JSONSerializer.DEFAULT_RESPONSE_CODE)
    return service_model, _compile(output_shape, {}), status, content_type


def _unsupported(value: Any) -> Any:
    raise _Unsupported


def _compile(shape: Any, built: dict[str, Serialize]) -> Serialize:
    """The walk for values of `shape`; `built` holds the shapes compiled so far (AttributeValue nests itself)."""
    if shape.serialization:  # a wire name or another trait the walk does not model
        return _unsupported
    if shape.name in built:
        return built[shape.name]
    done: list[Serialize] = []
    built[shape.name] = lambda value: done[0](value)  # what refers to the shape while it is compiled
    kind = shape.type_name
    if kind == "structure":
        serialize = _structure(shape, built)
    elif kind == "map":
        serialize = _map(_compile(shape.value, built), shape.value.type_name == "structure")
    elif kind == "list":
        serialize = _list(_compile(shape.member, built))
    else:
        serialize = _SCALARS.get(kind, _unsupported)
    done.append(serialize)
    built[shape.name] = serialize
    return serialize


def _aliases(parent: Any, key: str, shape: Any) -> set[str]:
    """Every other key moto's XFormedAttributePicker may read member `key` from, in a plain dict (a superset)."""
    from botocore import xform_name

    names = {xform_name(key)}
    if shape.type_name in ("list", "structure"):
        names |= {shape.name, xform_name(shape.name)}
    for prefix in (parent.name, "dict"):  # ShapePrefixAlias, ClassPrefixAlias (a dict's class name)
        if key.lower().startswith(prefix.lower()):
            names |= {key[len(prefix) :], xform_name(key[len(prefix) :])}
    names.discard(key)
    return names


def _structure(shape: Any, built: dict[str, Serialize]) -> Serialize:
    if shape.is_document_type:
        return _unsupported
    members = {key: _compile(member, built) for key, member in shape.members.items()}
    alternatives = set().union(*(_aliases(shape, key, member) for key, member in shape.members.items()))
    if alternatives & members.keys():  # the serializer could read one member's value from another's key
        return _unsupported
    order = tuple(members.items())

    def structure(value: Any) -> Any:
        if value is None:
            return _DROP
        if type(value) is not dict:
            raise _Unsupported
        if len(value) == 1:  # an attribute value: {"S": ...}
            ((key, item),) = value.items()
            serialize = members.get(key)
            if serialize is None:
                if key in alternatives:
                    raise _Unsupported
                return {}
            return {} if item is None else {key: serialize(item)}
        for key in value:
            if key in alternatives:
                raise _Unsupported
        return {key: serialize(value[key]) for key, serialize in order if value.get(key) is not None}

    return structure


def _map(serialize: Serialize, of_structures: bool) -> Serialize:
    def map_(value: Any) -> Any:
        if type(value) is not dict:
            raise _Unsupported
        out = {}
        for key, item in value.items():
            # The serializer writes a structure under an empty key into the map itself.
            if type(key) is not str or (of_structures and not key):
                raise _Unsupported
            serialized = serialize(item)
            if serialized is not _DROP:
                out[key] = serialized
        return out

    return map_


def _list(serialize: Serialize) -> Serialize:
    def list_(value: Any) -> Any:
        if type(value) is not list:
            raise _Unsupported
        out = []
        for item in value:
            serialized = serialize(item)
            out.append(item if serialized is _DROP else serialized)
        return out

    return list_


def _string(value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in _EMPTY else value


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).strip().decode("utf-8")


def _timestamp(value: Any) -> int | float:
    """A stream record's creation time in epoch seconds to the millisecond, as the serializer writes the JSON
    protocol's default `unixtimestamp` (a shape naming another format is not compiled); a value other than a
    datetime goes to the serializer."""
    from botocore.utils import parse_to_aware_datetime
    from moto.core.serialize import TimestampSerializer

    if not isinstance(value, datetime):
        raise _Unsupported
    stamp: int | float = TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(value))
    return stamp


# The serializer's scalar types (any other goes to it).
_SCALARS: dict[str, Serialize] = {"string": _string, "blob": _blob, "boolean": lambda value: value}
_SCALARS.update({"integer": int, "long": int, "float": float, "double": float, "timestamp": _timestamp})
