"""Domain errors and their single HTTP mapping.

Each error carries its HTTP status and a stable snake_case code; the edge (app.py) turns any of them
into `{"error": {"code", "message"}}` in one place.
"""

from __future__ import annotations

from typing import Any


class LiveDropError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body of docs/api.md."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidRequestError(LiveDropError):
    status, code = 400, "invalid_request"


class InvalidPageError(LiveDropError):
    status, code = 400, "invalid_page"


class MissingIdempotencyKeyError(LiveDropError):
    status, code = 400, "missing_idempotency_key"


class UnauthorizedError(LiveDropError):
    status, code = 401, "unauthorized"


class InvalidCredentialsError(LiveDropError):
    status, code = 401, "invalid_credentials"


class ForbiddenError(LiveDropError):
    status, code = 403, "forbidden"


class NotFoundError(LiveDropError):
    status, code = 404, "not_found"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"


class CreatorNotFoundError(NotFoundError):
    code = "creator_not_found"


class ProductNotFoundError(NotFoundError):
    code = "product_not_found"


class DropNotFoundError(NotFoundError):
    code = "drop_not_found"


class OrderNotFoundError(NotFoundError):
    code = "order_not_found"


class ConflictError(LiveDropError):
    status, code = 409, "conflict"


class UserExistsError(ConflictError):
    code = "user_exists"


class AlreadyCreatorError(ConflictError):
    code = "already_creator"


class DropNotStartedError(ConflictError):
    code = "drop_not_started"


class DropEndedError(ConflictError):
    code = "drop_ended"


class SoldOutError(ConflictError):
    code = "sold_out"


class InsufficientStockError(ConflictError):
    code = "insufficient_stock"


class PurchaseLimitExceededError(ConflictError):
    code = "purchase_limit_exceeded"


class IdempotencyKeyReusedError(LiveDropError):
    status, code = 422, "idempotency_key_reused"


class TooManyConnectionsError(LiveDropError):
    status, code = 429, "too_many_connections"


class TooManySubscriptionsError(LiveDropError):
    status, code = 429, "too_many_subscriptions"


class TryAgainError(LiveDropError):
    status, code = 503, "try_again"


class BackendUnavailableError(LiveDropError):
    status, code = 503, "backend_unavailable"


class InvalidSignatureError(LiveDropError):
    status, code = 400, "invalid_signature"


class PaymentProviderError(LiveDropError):
    """The payment provider failed in a way worth retrying (network, 5xx, rate limit)."""

    status, code = 502, "payment_provider_error"
