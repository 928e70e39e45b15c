"""The REST edge: domain errors mapped to HTTP once, identity read from the authorizer's claims."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib import aws, errors
from chalicelib.db import is_transient, is_unreachable
from chalicelib.errors import BackendUnavailableError, LiveDropError, TryAgainError, UnauthorizedError
from chalicelib.messages import EventType, FrameType

if TYPE_CHECKING:
    from chalicelib.orders import PlacedOrder

log = logging.getLogger("livedrop.web")
JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON Response (an empty body for 204/304)."""
    merged: dict[str, str | list[str]] = {**JSON_HEADERS, **(headers or {})}
    if status in (204, 304):
        return Response(body="", status_code=status, headers={k: v for k, v in merged.items() if k != "Content-Type"})
    return Response(body=json.dumps(body, separators=(",", ":")), status_code=status, headers=merged)


# The one mapping of domain errors to HTTP statuses (docs/api.md). A subclass not listed answers with
# its nearest listed base class's status, so a new NotFoundError is a 404 without an entry here.
STATUS: dict[type[LiveDropError], int] = {
    errors.LiveDropError: 400,
    errors.InvalidRequestError: 400,
    errors.InvalidPageError: 400,
    errors.MissingIdempotencyKeyError: 400,
    errors.InvalidSignatureError: 400,
    errors.InvalidUnsubscribeLinkError: 400,
    errors.UnauthorizedError: 401,
    errors.InvalidCredentialsError: 401,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.IdempotencyKeyReusedError: 422,
    errors.RateLimitedError: 429,
    errors.TooManyConnectionsError: 429,
    errors.TooManySubscriptionsError: 429,
    errors.PaymentProviderError: 502,
    errors.TryAgainError: 503,
    errors.BackendUnavailableError: 503,
}


def status_of(error: LiveDropError) -> int:
    """The HTTP status of a domain error: its class's entry in STATUS, else its nearest base's."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    raise TypeError(f"{type(error).__name__} is not a LiveDropError")


def error_body(error: LiveDropError) -> dict[str, Any]:
    """The JSON error body of docs/api.md."""
    return {"error": {"code": error.code, "message": error.message}}


def error_response(error: LiveDropError) -> Response:
    """A domain error as HTTP: its status, the docs/api.md body, Retry-After when the error knows when."""
    headers = None if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return json_response(error_body(error), status_of(error), headers)


_EVENT_NAMES = {
    EventType.DROP_STARTED.value: "drops starting",
    EventType.ORDER_CONFIRMED.value: "order confirmations",
    FrameType.DRAW_WON.value: "draw wins",
}


def unsubscribe_response(result: dict[str, Any], request: Any, done: bool) -> Response:
    """/unsubscribe: JSON, or for a browser (Accept: text/html) a page with a button that POSTs."""
    if "text/html" not in str((request.headers or {}).get("accept", "")):
        return json_response(result)
    what = escape(_EVENT_NAMES.get(str(result["event"]), str(result["event"])))
    if done:
        text = f"<p>Done: you will get no more e-mails about {what}.</p>"
    elif not result["enabled"]:
        text = f"<p>You already get no e-mails about {what}.</p>"
    else:
        text = f'<p>Stop e-mails about {what}?</p><form method="post"><button type="submit">Unsubscribe</button></form>'
    page = f'<!doctype html><html lang="en"><meta charset="utf-8"><title>Unsubscribe</title>{text}</html>'
    return Response(body=page, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


def placed_order_response(placed: PlacedOrder) -> Response:
    """POST /orders: 201 and the order, whether placed now or replayed (then Idempotent-Replayed: true)."""
    return json_response(placed.order, 201, {"Idempotent-Replayed": "true"} if placed.replayed else None)


def internal_error_response() -> Response:
    """A 500 that says nothing about the code behind it."""
    return json_response({"error": {"code": "internal_error", "message": "internal error"}}, 500)


def guarded(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a view so domain errors become their HTTP response and nothing leaks a stack trace."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except LiveDropError as error:
            return error_response(error)
        except Exception as error:
            if is_unreachable(error):
                # The data store (or another backend) did not answer within the SDK's timeouts and retries.
                log.warning("%s: AWS did not answer: %s", view.__name__, error)
                return error_response(BackendUnavailableError("a backend is not answering, try again later"))
            if is_transient(error):
                # AWS stayed busy or unreachable through the SDK's retries: a 503 the client may retry.
                log.warning("%s: AWS busy or unreachable: %s", view.__name__, error)
                return error_response(TryAgainError("the service is busy, try again"))
            log.exception("unhandled error in %s", view.__name__)
            return internal_error_response()

    return wrapper


def claims_of(request: Any) -> dict[str, Any]:
    """The Cognito claims API Gateway's authorizer put on the request (401 if there are none)."""
    authorizer = (request.context or {}).get("authorizer") or {}
    claims = authorizer.get("claims") or {}
    if not claims.get("sub"):
        raise UnauthorizedError("a valid token is required")
    return dict(claims)


def caller_id(request: Any) -> str:
    """The signed-in user's id (the token's `sub`)."""
    return str(claims_of(request)["sub"])


def conditional_json(body: dict[str, Any], request: Any, max_age: int) -> Response:
    """A cacheable JSON read: ETag and Cache-Control, and 304 when If-None-Match has the ETag."""
    raw = json.dumps(body, separators=(",", ":"))  # serialized once: the ETag is of these bytes
    etag = f'"{hashlib.sha256(raw.encode()).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    sent = (request.headers or {}).get("if-none-match", "")
    if etag in [tag.strip() for tag in sent.split(",")] or sent.strip() == "*":
        return json_response(None, 304, headers)
    merged: dict[str, str | list[str]] = {**JSON_HEADERS, **headers}
    return Response(body=raw, status_code=200, headers=merged)


def chalice_errors_in_api_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: the few errors Chalice answers itself, before any view runs (415 for a body
    whose Content-Type a route does not accept), in the API's error shape instead of Chalice's
    `{"Code", "Message"}`."""
    response = get_response(event)
    if response.status_code == 415 and isinstance(response.body, dict) and "Code" in response.body:
        message = str(response.body.get("Message") or "Unsupported Media Type")
        return json_response(
            {"error": {"code": "unsupported_media_type", "message": message}}, 415, _without_type(response.headers)
        )
    return response


def within_request_deadline(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: a request's AWS calls wait the API's shorter read timeout, a timed-out call is not
    retried and none starts past the Lambda's remaining time, so a backend that does not answer is a 503
    backend_unavailable within about 5 s, not API Gateway's 504 after 29 s (chalicelib.aws)."""
    with aws.request_deadline(getattr(event, "lambda_context", None)):
        return get_response(event)


def _without_type(headers: dict[str, Any] | None) -> dict[str, str]:
    return {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
