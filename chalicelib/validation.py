"""Input validation at the edge: one explicit-schema mechanism, unknown fields rejected."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import InvalidRequestError

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


@dataclass(frozen=True)
class Field:
    kind: type | str  # str, int, bool, "email", "time", "currency"
    required: bool = True
    min: int | None = None
    max: int | None = None

    def check(self, name: str, value: Any) -> Any:
        """The validated (and for times, converted) value, or InvalidRequestError naming `name`."""
        if self.kind in (str, "email", "currency", "time"):
            if not isinstance(value, str):
                raise InvalidRequestError(f"{name} must be a string")
            if self.kind == "time":
                return parse_time(name, value)
            if self.kind == "email":
                if not _EMAIL.match(value):
                    raise InvalidRequestError(f"{name} must be an email address")
                return value.lower()
            if self.kind == "currency":
                if not re.fullmatch(r"[A-Z]{3}", value):
                    raise InvalidRequestError(f"{name} must be an ISO 4217 code such as USD")
                return value
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

    def _range(self, name: str, value: int, what: str) -> None:
        if self.min is not None and value < self.min:
            raise InvalidRequestError(f"{name} {what} must be at least {self.min}")
        if self.max is not None and value > self.max:
            raise InvalidRequestError(f"{name} {what} must be at most {self.max}")


def parse_json_object(raw: bytes | str | None) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidRequestError."""
    if raw is None or raw in (b"", ""):
        raise InvalidRequestError("request body must be a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    return body


def validate(body: dict[str, Any], schema: dict[str, Field]) -> dict[str, Any]:
    """Check `body` against `schema`: unknown, missing and wrongly typed fields are 400s."""
    unknown = sorted(set(body) - set(schema))
    if unknown:
        raise InvalidRequestError(f"unknown field: {unknown[0]}")
    clean: dict[str, Any] = {}
    for name, field in schema.items():
        if name not in body or body[name] is None:
            if field.required:
                raise InvalidRequestError(f"{name} is required")
            continue
        clean[name] = field.check(name, body[name])
    return clean


def parse_body(raw: bytes | str | None, schema: dict[str, Field]) -> dict[str, Any]:
    """parse_json_object then validate."""
    return validate(parse_json_object(raw), schema)


def parse_time(name: str, value: str) -> int:
    """An ISO-8601 UTC time (with Z or an offset) as epoch milliseconds."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(f"{name} must be an ISO-8601 time such as 2030-01-01T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise InvalidRequestError(f"{name} must carry a time zone (use Z for UTC)")
    return int(parsed.timestamp() * 1000)


def format_time(epoch_ms: int | float | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with Z (millisecond precision)."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(int(epoch_ms) / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
