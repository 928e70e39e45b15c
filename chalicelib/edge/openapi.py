"""The OpenAPI 3 document of the REST API, kept in one file beside this module (openapi.json).

Its request schemas and parameter limits are generated from the declarations of chalicelib.schema.commands,
the same rules validation enforces, and its success responses from the typed responses of
chalicelib.schema.responses; a test checks that the file equals what `generated` makes of it. After
changing a rule or a response, `python -m chalicelib.edge.openapi` writes them into the file again.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from enum import Enum
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal, NotRequired, Union, get_args, get_origin, get_type_hints, is_typeddict

from chalicelib.core.validation import object_schema
from chalicelib.schema.commands import IDEMPOTENCY_KEY, PAGE_SIZE, PATH_PARAMETERS, REQUEST_BODIES
from chalicelib.schema.responses import ROUTES, Schema

DOCUMENT = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The parsed document (read once per Lambda)."""
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def request_schema(command: type) -> dict[str, Any]:
    """A command class as the JSON Schema of its request body: no field but the declared ones."""
    return object_schema(command)


JSON = "application/json"
_REF = "#/components/schemas/"


def type_schema(hint: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A Python type of chalicelib.schema.responses as JSON Schema. Each TypedDict it names is written
    into `components` once, as a closed object, and referred to by name; a command class names the
    component generated from its rules."""
    keywords: dict[str, Any] = {}
    keys: tuple[str, ...] = ()
    while get_origin(hint) in (typing.Annotated, NotRequired):
        if get_origin(hint) is typing.Annotated:
            for extra in hint.__metadata__:
                if isinstance(extra, Schema):
                    keywords |= extra.keywords
                    keys = extra.keys or keys
        hint = get_args(hint)[0]
    schema = _bare_schema(hint, components, keys)
    if "enum" in keywords:
        schema.pop("type", None)  # the listed values say it all
    return schema | keywords


def _bare_schema(hint: Any, components: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _union_schema(args, components)
    if is_typeddict(hint):
        if hint.__name__ not in components:
            components[hint.__name__] = {}  # taken before its fields, so a type that names itself ends
            components[hint.__name__] = _object_schema(hint, components)
        return {"$ref": _REF + hint.__name__}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return {"$ref": _REF + hint.__name__}  # a command: its component is generated from its rules
    if origin is Literal or (isinstance(hint, type) and issubclass(hint, Enum)):
        return {"enum": [value.value if isinstance(value, Enum) else value for value in (args or list(hint))]}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0], components)}
    if origin is dict and keys:
        item = type_schema(args[1], components)
        properties = {key: dict(item) for key in keys}
        return {"type": "object", "required": list(keys), "additionalProperties": False, "properties": properties}
    if origin is dict:
        return (
            {"type": "object"}
            if args[1] is Any
            else {"type": "object", "additionalProperties": type_schema(args[1], components)}
        )
    return {"type": _JSON_TYPES[hint]}


_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number"}


def _union_schema(args: tuple[Any, ...], components: dict[str, Any]) -> dict[str, Any]:
    nullable = type(None) in args
    members = [type_schema(arg, components) for arg in args if arg is not type(None)]
    if all(set(member) == {"enum"} for member in members):
        return {"enum": [value for member in members for value in member["enum"]] + ([None] if nullable else [])}
    if len(members) > 1:  # one of several objects (or null)
        return {"oneOf": [*members, *([{"type": "null"}] if nullable else [])]}
    (only,) = members
    if "$ref" in only:
        return {"oneOf": [only, {"type": "null"}]}
    if "enum" in only:
        return {**only, "enum": [*only["enum"], None]}
    return {**only, "type": [only["type"], "null"]}


def _object_schema(typed: Any, components: dict[str, Any]) -> dict[str, Any]:
    # Read from the hints, not __required_keys__: under postponed annotations Python 3.11 counts a
    # NotRequired key as required.
    hints = get_type_hints(typed, include_extras=True)
    return {
        "type": "object",
        "required": [name for name, hint in hints.items() if get_origin(hint) is not NotRequired],
        "additionalProperties": False,
        "properties": {name: type_schema(hint, components) for name, hint in hints.items()},
    }


def _drop_unreferenced(doc: dict[str, Any]) -> None:
    """Remove the components nothing refers to any more (a response type renamed or folded into another)."""
    schemas = doc["components"]["schemas"]
    while True:
        text = json.dumps(doc)
        unused = [name for name in schemas if f'"{_REF}{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def generated(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with every request body schema, path id, `?limit=` and Idempotency-Key written from the
    declarations of chalicelib.schema.commands, and every success response's schema from the typed
    responses of chalicelib.schema.responses (the rest of the document is kept as it is; components
    nothing refers to any more are dropped)."""
    out = copy.deepcopy(doc)
    schemas = out["components"]["schemas"]
    for command in REQUEST_BODIES:
        schemas[command.__name__] = request_schema(command)
    answers: dict[str, Any] = {}  # the response components, generated afresh
    for (method, path), bodies in ROUTES.items():
        responses = out["paths"][path][method.lower()]["responses"]
        for status, body in bodies.items():
            answer = responses.setdefault(str(status), {"description": HTTPStatus(status).phrase.lower()})
            content = answer.setdefault("content", {})
            if body is None:
                content.pop(JSON, None)
            else:
                content[JSON] = {"schema": type_schema(body, answers)}
            if not content:
                del answer["content"]
    clash = set(answers) & {command.__name__ for command in REQUEST_BODIES}
    if clash:
        raise ValueError(f"a response type is named like a command: {sorted(clash)}")
    schemas |= answers
    _drop_unreferenced(out)
    for item in out["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                place, name = parameter["in"], parameter["name"]
                if place == "path":
                    parameter["schema"] = PATH_PARAMETERS[name].json_schema()
                elif (place, name) == ("query", "limit"):
                    parameter["schema"] = PAGE_SIZE.json_schema()
                elif (place, name) == ("header", "Idempotency-Key"):
                    parameter["schema"] = IDEMPOTENCY_KEY.json_schema()
    return out


def write() -> None:
    """Rewrite openapi.json with the generated request schemas and limits."""
    DOCUMENT.write_text(json.dumps(generated(json.loads(DOCUMENT.read_text())), indent=1, ensure_ascii=False))


if __name__ == "__main__":
    write()
