"""Input validation at the edge: one explicit-schema mechanism, unknown fields rejected, typed commands out.

A request's fields are declared once, as Field rules on a command class (chalicelib.schema.commands); the
same rules check what arrives and write the request schemas of the OpenAPI document.

Every rule here exists so that what the API accepts is something the domain can store and every
read can render again: text without lone surrogates or control characters, times inside the years
an epoch-millisecond timestamp renders as ISO-8601, ids of the shape the server issues, flat JSON.
The numbers are documented for users in docs/limits-and-faults.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from chalicelib.core.countries import COUNTRY_CODES
from chalicelib.core.errors import InvalidRequestError

log = logging.getLogger("livedrop.validation")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MAX_EMAIL_LENGTH = 254
# Ids the server issues are `xx_` + 32 hex digits (35 characters) or Cognito subs (36); 64 leaves room.
MAX_ID_LENGTH = 64
ID_PATTERN = "^[A-Za-z0-9_-]+$"
_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}")
CURRENCY_PATTERN = "^[A-Z]{3}$"
# The request bodies and frames of the API are flat objects; this leaves room and stops recursion.
MAX_JSON_DEPTH = 8
# Lone surrogates cannot be encoded as UTF-8 (DynamoDB, Cognito, JSON on the wire all refuse them);
# C0/C1 control characters and DEL break logs and rendering. Multi-line text may keep \t \n \r.
_BAD_LINE = re.compile(r"[\ud800-\udfff\x00-\x1f\x7f-\x9f]")
_BAD_TEXT = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# ISO-8601 as the API documents it: date, time, optional fraction, then Z or an offset; ASCII digits only.
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|z|[+-][0-9]{2}:[0-9]{2})")
# What format_time renders: 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COUNTRIES = frozenset(COUNTRY_CODES)


@dataclass(frozen=True)
class Field:
    """One field's rule, declared once: what validation enforces and what the OpenAPI document says."""

    # str, int, bool, dict, "email", "time", "currency", "id", "country", or a command class (a nested object)
    kind: type | str
    required: bool = True
    min: int | None = None
    max: int | None = None
    multiline: bool = False  # text that may hold tabs and line breaks (descriptions, profiles)
    choices: tuple[str, ...] | None = None  # str only: the value must be one of these
    description: str | None = None  # for users, in the OpenAPI document
    # dict only: an object whose keys are among `keys` (all of them when `every_key`), each value of
    # kind `item` (bool, or str of at most `max` characters).
    keys: tuple[str, ...] = ()
    item: type = bool
    every_key: bool = False

    def check(self, name: str, value: Any) -> Any:
        """The validated (and for times, converted) value, or InvalidRequestError naming `name`."""
        if self.kind is dict:
            return self._check_object(name, value)
        if isinstance(self.kind, type) and dataclasses.is_dataclass(self.kind):
            if not isinstance(value, dict):
                raise InvalidRequestError(f"{name} must be an object")
            return self.kind(**validate(value, rules_of(self.kind), prefix=f"{name}."))
        if self.kind in (str, "email", "currency", "time", "id", "country"):
            if not isinstance(value, str):
                raise InvalidRequestError(f"{name} must be a string")
            if self.choices is not None:
                if value not in self.choices:
                    raise InvalidRequestError(f"{name} must be one of {', '.join(self.choices)}")
                return value
            if self.kind == "time":
                return parse_time(name, value)
            if self.kind == "id":
                return check_id(name, value)
            if self.kind == "email":
                if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.match(value) or _BAD_LINE.search(value):
                    raise InvalidRequestError(f"{name} must be an email address")
                return value.lower()
            if self.kind == "currency":
                if not re.fullmatch(CURRENCY_PATTERN, value):
                    raise InvalidRequestError(f"{name} must be an ISO 4217 code such as USD")
                return value
            if self.kind == "country":
                if value not in _COUNTRIES:
                    raise InvalidRequestError(f"{name} must be an ISO 3166-1 alpha-2 country code such as US")
                return value
            check_text(name, value, self.multiline)
            self._range(name, len(value), "length")
            return value
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidRequestError(f"{name} must be an integer")
            self._range(name, value, "value")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InvalidRequestError(f"{name} must be true or false")
            return value
        raise TypeError(f"unknown field kind {self.kind!r}")

    def _check_object(self, name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidRequestError(f"{name} must be an object")
        keys = self.keys
        unknown = sorted(str(key) for key in value if key not in keys)
        if unknown:
            raise InvalidRequestError(f"unknown field: {name}.{_shown(unknown[0])}")
        for key in keys:
            if key not in value:
                if self.every_key:
                    raise InvalidRequestError(f"{name}.{key} is required")
                continue
            Field(self.item, min=1 if self.item is str else None, max=self.max).check(f"{name}.{key}", value[key])
        return dict(value)

    def json_schema(self) -> dict[str, Any]:
        """This rule as the JSON Schema of the OpenAPI document: the same limits validation enforces."""
        schema: dict[str, Any]
        if isinstance(self.kind, type) and dataclasses.is_dataclass(self.kind):
            schema = object_schema(self.kind)
        elif self.kind is dict:
            item = Field(self.item, min=1 if self.item is str else None, max=self.max).json_schema()
            schema = {"type": "object", "additionalProperties": False}
            schema["properties"] = {key: dict(item) for key in self.keys}
            if self.every_key:
                schema["required"] = list(self.keys)
        elif self.choices is not None:
            schema = {"enum": list(self.choices)}
        elif self.kind == "email":
            schema = {"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH}
        elif self.kind == "time":
            schema = {"type": "string", "format": "date-time"}
        elif self.kind == "currency":
            schema = {"type": "string", "pattern": CURRENCY_PATTERN}
        elif self.kind == "country":
            schema = {"type": "string", "enum": list(COUNTRY_CODES)}
        elif self.kind == "id":
            schema = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": ID_PATTERN}
        elif self.kind is bool:
            schema = {"type": "boolean"}
        else:
            low, high = ("minimum", "maximum") if self.kind is int else ("minLength", "maxLength")
            schema = {"type": "integer" if self.kind is int else "string"}
            schema |= {key: bound for key, bound in ((low, self.min), (high, self.max)) if bound is not None}
        if self.description:
            schema["description"] = self.description
        return schema

    def _range(self, name: str, value: int, what: str) -> None:
        if self.min is not None and value < self.min:
            raise InvalidRequestError(f"{name} {what} must be at least {self.min}")
        if self.max is not None and value > self.max:
            raise InvalidRequestError(f"{name} {what} must be at most {self.max}")


def check_text(name: str, value: str, multiline: bool = False) -> str:
    """`value` if it holds no lone surrogate and no control character (tabs and line breaks only
    where `multiline`), else InvalidRequestError naming `name`."""
    if (_BAD_TEXT if multiline else _BAD_LINE).search(value):
        raise InvalidRequestError(f"{name} must not contain control characters or lone surrogates")
    return value


def check_id(name: str, value: str) -> str:
    """`value` if it has the shape of an id this API issues, else InvalidRequestError naming `name`."""
    if not is_id(value):
        raise InvalidRequestError(f"{name} must be an id of 1 to {MAX_ID_LENGTH} letters, digits, '_' or '-'")
    return value


def is_id(value: Any) -> bool:
    """Whether `value` has the shape of an id this API issues (it may still name nothing)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def check_path_ids(params: Mapping[str, Any], not_found: Mapping[str, type[Exception]]) -> None:
    """Raise the resource's not-found error for a path id no id this API issues could match: the
    path names nothing, exactly like a well-formed id that does not exist."""
    for name, value in params.items():
        if name in not_found and not is_id(value):
            raise not_found[name]("no such " + name.removesuffix("_id"))


def load_json(raw: bytes | str, what: str = "request body") -> Any:
    """Parsed JSON no deeper than MAX_JSON_DEPTH, or InvalidRequestError."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequestError(f"{what} is not valid JSON") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InvalidRequestError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            level.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_json_object(raw: bytes | str | None, what: str = "request body") -> dict[str, Any]:
    """The request body as a JSON object, or InvalidRequestError."""
    if raw is None or raw in (b"", ""):
        raise InvalidRequestError(f"{what} must be a JSON object")
    body = load_json(raw, what)
    if not isinstance(body, dict):
        raise InvalidRequestError(f"{what} must be a JSON object")
    return body


def validate(body: dict[str, Any], schema: dict[str, Field], prefix: str = "") -> dict[str, Any]:
    """Check `body` against `schema`: unknown, missing and wrongly typed fields are InvalidRequestError
    (naming the field after `prefix`, the path of a nested object)."""
    unknown = sorted(str(key) for key in set(body) - set(schema))
    if unknown:
        raise InvalidRequestError(f"unknown field: {prefix}{_shown(unknown[0])}")
    clean: dict[str, Any] = {}
    for name, field in schema.items():
        if name not in body or body[name] is None:
            if field.required:
                raise InvalidRequestError(f"{prefix}{name} is required")
            continue
        clean[name] = field.check(prefix + name, body[name])
    return clean


def object_schema(command: type) -> dict[str, Any]:
    """A command class as the JSON Schema of an object holding exactly its declared fields."""
    rules = rules_of(command)
    schema: dict[str, Any] = {"type": "object"}
    note = getattr(command, "schema_description", None)
    if note:
        schema["description"] = note
    required = [name for name, rule in rules.items() if rule.required]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    schema["properties"] = {name: nullable(rule.json_schema(), rule.required) for name, rule in rules.items()}
    return schema


def nullable(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    """An optional field's schema also allows null: validation reads a null as not sent."""
    if required:
        return schema
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {**schema, "type": [schema["type"], "null"]}


def _shown(name: str) -> str:
    # The message echoes a client's field name: printable and short, whatever was sent.
    safe = _BAD_LINE.sub("?", name)
    return safe if len(safe) <= 64 else safe[:61] + "..."


Command = TypeVar("Command")
_RULE = "rule"


def rule(kind: type | str, **options: Any) -> Any:
    """A command attribute declared by its Field rule (an optional one defaults to None)."""
    declared = Field(kind, **options)
    if declared.required:
        return dataclasses.field(metadata={_RULE: declared})
    return dataclasses.field(default=None, metadata={_RULE: declared})


def rules_of(command: type) -> dict[str, Field]:
    """A command class's fields and their rules, in declaration order (the order they are checked in)."""
    return {field.name: field.metadata[_RULE] for field in dataclasses.fields(command) if _RULE in field.metadata}


def command_from(body: dict[str, Any], command: type[Command]) -> Command:
    """The typed command of a parsed JSON object, or InvalidRequestError (see validate)."""
    return command(**validate(body, rules_of(command)))


def parse_command(raw: bytes | str | None, command: type[Command]) -> Command:
    """The typed command of a raw request body: parse_json_object, then command_from."""
    return command_from(parse_json_object(raw), command)


def parse_optional_command(raw: bytes | str | None, command: type[Command]) -> Command:
    """parse_command for a route whose body may be left out: no body is the command without fields."""
    if raw is None or raw in (b"", ""):
        return command_from({}, command)
    return parse_command(raw, command)


def parse_time(name: str, value: str) -> int:
    """An ISO-8601 time with Z or an offset, as epoch milliseconds inside the renderable years."""
    if not _TIME.fullmatch(value):
        raise InvalidRequestError(f"{name} must be an ISO-8601 time such as 2030-01-01T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
        # Aware datetimes subtract in UTC, so an offset that carries year 9999 past its end still computes.
        since = parsed - _EPOCH
        epoch_ms = (since.days * 86_400 + since.seconds) * 1000 + since.microseconds // 1000
    except (ValueError, OverflowError):
        raise InvalidRequestError(f"{name} must be an ISO-8601 time such as 2030-01-01T12:00:00Z") from None
    if not MIN_TIME_MS <= epoch_ms <= MAX_TIME_MS:
        raise InvalidRequestError(f"{name} must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z")
    return epoch_ms


def format_time(epoch_ms: int | float | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with Z (millisecond precision); None for a value no time
    can show, so one bad stored item never fails a whole read."""
    if epoch_ms is None:
        return None
    try:
        moment = _EPOCH + timedelta(milliseconds=int(epoch_ms))
    except (ValueError, OverflowError, TypeError):
        log.warning("unrenderable time %r", epoch_ms)
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
