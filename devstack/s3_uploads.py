"""S3 browser uploads (presigned POST) checked against their policy, as S3 checks them.

moto stores whatever a presigned POST sends; S3 refuses an upload its policy does not allow: a file
outside the `content-length-range` (400 EntityTooLarge / EntityTooSmall), a form field that breaks an
exact-match condition, or a policy past its expiration (403 AccessDenied). Product images
(chalicelib.domain.images) rely on the size cap, so the dev stack enforces it the same way."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape


class PostPolicyCheck:
    """WSGI middleware in front of the embedded S3: a multipart POST to a bucket that carries a
    `policy` field is held to it; every other request passes on untouched."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        kind = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") != "POST" or not kind.startswith("multipart/form-data"):
            return self._app(environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        refusal = _refusal(_form(environ, raw))
        environ["wsgi.input"] = io.BytesIO(raw)
        if refusal is None:
            return self._app(environ, start_response)
        status, code, message = refusal
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
        ).encode()
        start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]


def _form(environ: dict[str, Any], raw: bytes) -> tuple[dict[str, str], int | None]:
    """The form's fields and the size of its file (None when it has none)."""
    from werkzeug.formparser import parse_form_data

    copy = {**environ, "wsgi.input": io.BytesIO(raw)}
    _, form, files = parse_form_data(copy)
    upload = files.get("file")
    return {name.lower(): value for name, value in form.items()}, None if upload is None else len(upload.read())


def _refusal(parsed: tuple[dict[str, str], int | None]) -> tuple[str, str, str] | None:
    fields, size = parsed
    if "policy" not in fields:
        return None
    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
        conditions = list(policy.get("conditions", []))
    except (ValueError, KeyError, TypeError):
        return "400 Bad Request", "InvalidPolicyDocument", "Invalid Policy: Invalid JSON."
    if expires < datetime.now(UTC):
        return "403 Forbidden", "AccessDenied", "Invalid according to Policy: Policy expired."
    for condition in conditions:
        if isinstance(condition, list) and condition and condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size is not None and size > high:
                return "400 Bad Request", "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            if size is not None and size < low:
                return (
                    "400 Bad Request",
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                )
        elif isinstance(condition, dict):
            for name, value in condition.items():
                if name.lower() != "bucket" and fields.get(name.lower()) != value:
                    return (
                        "403 Forbidden",
                        "AccessDenied",
                        f"Invalid according to Policy: Policy Condition failed: {name}",
                    )
    return None
