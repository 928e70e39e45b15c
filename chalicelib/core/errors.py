"""Domain errors: a stable snake_case code, a message, and domain data (how soon to try again).

They know nothing of HTTP: the REST edge (chalicelib.edge.web) maps each class to its status and headers
in one table, the WebSocket edge turns them into error frames.
"""

from __future__ import annotations


class LiveDropError(Exception):
    code = "invalid_request"
    # Seconds after which the same request may succeed, where the error knows (busy, rate-limited).
    retry_after: int | None = None

    def __init__(self, message: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidRequestError(LiveDropError):
    code = "invalid_request"


class InvalidPageError(LiveDropError):
    code = "invalid_page"


class MissingIdempotencyKeyError(LiveDropError):
    code = "missing_idempotency_key"


class UnauthorizedError(LiveDropError):
    code = "unauthorized"


class InvalidCredentialsError(LiveDropError):
    code = "invalid_credentials"


class ForbiddenError(LiveDropError):
    code = "forbidden"


class NotFoundError(LiveDropError):
    code = "not_found"


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
    code = "conflict"


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


class OrderNotCancellableError(ConflictError):
    code = "order_not_cancellable"


class TooManyImagesError(ConflictError):
    code = "too_many_images"


class DropNotEditableError(ConflictError):
    code = "drop_not_editable"


class PurchaseLimitExceededError(ConflictError):
    code = "purchase_limit_exceeded"


class AdmissionRequiredError(ForbiddenError):
    code = "admission_required"


class AdmissionExpiredError(ForbiddenError):
    code = "admission_expired"


class WrongSaleModeError(ConflictError):
    code = "wrong_sale_mode"


class LineNotOpenError(ConflictError):
    code = "line_not_open"


class LineClosedError(ConflictError):
    code = "line_closed"


class NotInLineError(NotFoundError):
    code = "not_in_line"


class RateLimitedError(LiveDropError):
    code = "rate_limited"


class IdempotencyKeyReusedError(LiveDropError):
    code = "idempotency_key_reused"


class TooManyConnectionsError(LiveDropError):
    code = "too_many_connections"


class TooManySubscriptionsError(LiveDropError):
    code = "too_many_subscriptions"


class TryAgainError(LiveDropError):
    """Contention or a busy backend: the same request a second later may well succeed."""

    code = "try_again"
    retry_after = 1


class BackendUnavailableError(LiveDropError):
    """A backend (the data store) did not answer in time or could not be reached."""

    code = "backend_unavailable"
    retry_after = 5


class InvalidSignatureError(LiveDropError):
    code = "invalid_signature"


class PaymentProviderError(LiveDropError):
    """The payment provider failed in a way worth retrying (network, 5xx, rate limit)."""

    code = "payment_provider_error"


class InvalidUnsubscribeLinkError(LiveDropError):
    """An unsubscribe token that this stage did not sign (altered, truncated or from another stage)."""

    code = "invalid_unsubscribe_link"
