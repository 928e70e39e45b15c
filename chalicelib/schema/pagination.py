"""`?limit=` and the opaque `?page=` token of docs/api.md (a DynamoDB LastEvaluatedKey, encoded)."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from chalicelib.core.errors import InvalidPageError, InvalidRequestError
from chalicelib.core.observability import count
from chalicelib.schema.commands import MAX_PAGE_SIZE

log = logging.getLogger("livedrop.pagination")
Row = TypeVar("Row")
View = TypeVar("View")  # a row as a response shows it (chalicelib.schema.responses)

DEFAULT_LIMIT = 20
MAX_LIMIT = MAX_PAGE_SIZE


def parse_limit(raw: str | None) -> int:
    """The page size from `?limit=` (1..100, default 20)."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also accepts superscripts and other scripts' digits.
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def encode_token(value: Any) -> str:
    """Any JSON value as an opaque, URL-safe page token."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The JSON value inside a page token, or InvalidPageError."""
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, RecursionError):
        raise InvalidPageError("page is not a token this API issued") from None


def encode_page(last_key: dict[str, Any] | None) -> str | None:
    """The `next_page` token for a LastEvaluatedKey (None when the listing is complete)."""
    return encode_token(last_key) if last_key else None


def check_key(key: Any, key_types: dict[str, str]) -> dict[str, Any]:
    """`key` if it is a DynamoDB key with exactly these attributes and types, else InvalidPageError."""
    if not isinstance(key, dict) or set(key) != set(key_types):
        raise InvalidPageError("page is not a token this API issued")
    for name, kind in key_types.items():
        value = key[name]
        if not isinstance(value, dict) or set(value) != {kind} or not isinstance(value[kind], str):
            raise InvalidPageError("page is not a token this API issued")
        if not value[kind] or len(value[kind]) > 1024 or (kind == "N" and not _is_number(value[kind])):
            raise InvalidPageError("page is not a token this API issued")
    return key


def decode_page(token: str | None, key_types: dict[str, str]) -> dict[str, Any] | None:
    """The LastEvaluatedKey inside a `page` token, or InvalidPageError for anything this API did not
    issue for this listing (`key_types` names each key attribute and its type, "S" or "N")."""
    if token is None or token == "":
        return None
    return check_key(decode_token(token), key_types)


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?\d{1,38}(\.\d{1,38})?", text) is not None


def page_body(items: list[dict[str, Any]], last_key: dict[str, Any] | None) -> dict[str, Any]:
    """The list body of docs/api.md."""
    return {"items": items, "next_page": encode_page(last_key)}


def render_each(rows: Iterable[Row], view: Callable[[Row], View]) -> list[View]:
    """Each row's view; a row that cannot be rendered is logged and left out, so one bad stored item
    never takes a whole listing down for every reader."""
    items: list[View] = []
    for row in rows:
        try:
            items.append(view(row))
        except Exception:
            log.exception("left an unrenderable %s out of a listing", type(row).__name__)
            count("UnrenderableItems")
    return items
