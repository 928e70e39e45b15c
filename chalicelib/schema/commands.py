"""The commands of the API: what a request asks for, typed, declared once.

Each request body is a frozen dataclass whose attributes carry their Field rule; validation builds
the command from a body with those rules (chalicelib.core.validation.parse_command), and the OpenAPI
document's request schemas are generated from the same rules (chalicelib.edge.openapi), so the two never
drift. Path ids, the Idempotency-Key header and the WebSocket frames are declared here too. The class
names are the names of the document's request components.

Times arrive as ISO-8601 text and are epoch milliseconds here; emails are lower-cased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.core.validation import Field, rule
from chalicelib.schema.messages import EventType, FrameType

# The limits of docs/api.md and docs/limits-and-faults.md that a request is checked against.
MAX_STOCK = 1_000_000
MAX_SHARDS = 32  # stock items a drop's units may be spread over (docs/sale-modes.md)
MAX_QUANTITY = 100
MAX_KEY_LENGTH = 255
MAX_PAGE_SIZE = 100
SALE_MODES = ("first_come", "queue", "draw")

# The ids a path may name: all of the shape the server issues (a path id of another shape names nothing).
ID = Field("id")
PATH_PARAMETERS = {name: ID for name in ("creator_id", "product_id", "drop_id", "order_id", "user_id")}
IDEMPOTENCY_KEY = Field(str, min=1, max=MAX_KEY_LENGTH)
PAGE_SIZE = Field(int, required=False, min=1, max=MAX_PAGE_SIZE)  # ?limit= (digits in the query string)


# --- auth and users ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SignUp:
    email: str = rule("email")
    password: str = rule(str, min=8, max=256)
    name: str = rule(str, min=1, max=100)


@dataclass(frozen=True, kw_only=True)
class Confirm:
    email: str = rule("email")
    code: str = rule(str, min=1, max=32)


@dataclass(frozen=True, kw_only=True)
class LogIn:
    email: str = rule("email")
    password: str = rule(str, min=1, max=256)


@dataclass(frozen=True, kw_only=True)
class Refresh:
    refresh_token: str = rule(str, min=1, max=8192)


@dataclass(frozen=True, kw_only=True)
class NewCreator:
    name: str = rule(str, min=1, max=100)
    profile: str | None = rule(str, required=False, max=2000, multiline=True)


# --- products and drops -----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class NewProduct:
    name: str = rule(str, min=1, max=200)
    description: str | None = rule(str, required=False, max=5000, multiline=True)
    price_cents: int = rule(int, min=0, max=100_000_000)
    currency: str = rule("currency")


@dataclass(frozen=True, kw_only=True)
class NewDrop:
    product_id: str = rule("id")
    start_time: int = rule("time")
    end_time: int = rule("time")
    stock: int = rule(int, min=1, max=MAX_STOCK)
    per_user_limit: int | None = rule(int, required=False, min=1, max=MAX_STOCK)
    low_stock_threshold: int | None = rule(int, required=False, min=0, max=MAX_STOCK)
    # Sale modes and sharded stock (docs/sale-modes.md).
    sale_mode: str | None = rule(
        str,
        required=False,
        choices=SALE_MODES,
        description="first_come (default), queue (waiting room) or draw; see docs/sale-modes.md",
    )
    stock_shards: int | None = rule(
        int,
        required=False,
        min=1,
        max=MAX_SHARDS,
        description="stock items the units are spread over (default 1, or 8 from 10,000 units); at most stock",
    )
    queue_opens_before_seconds: int | None = rule(
        int,
        required=False,
        min=0,
        max=7 * 86400,
        description="queue only: joins accepted from this long before start_time (default 3600)",
    )
    admissions_per_second: int | None = rule(
        int,
        required=False,
        min=1,
        max=10_000,
        description="queue only: how fast the serving counter advances (default 50)",
    )
    purchase_window_seconds: int | None = rule(
        int,
        required=False,
        min=10,
        max=86400,
        description="queue and draw: how long an admitted user or a winner may buy (default 300)",
    )
    entries_open_time: int | None = rule(
        "time",
        required=False,
        description="draw only: entries accepted from then until start_time, the draw (default: now)",
    )


@dataclass(frozen=True, kw_only=True)
class DropChanges:
    """PATCH /drops/{id}: what a creator may change before the drop starts (docs/api.md)."""

    schema_description: ClassVar[str] = "the settings to change; those not sent keep their value"

    start_time: int | None = rule("time", required=False)
    end_time: int | None = rule("time", required=False)
    stock: int | None = rule(int, required=False, min=1, max=MAX_STOCK)
    per_user_limit: int | None = rule(int, required=False, min=1, max=MAX_STOCK)
    low_stock_threshold: int | None = rule(int, required=False, min=0, max=MAX_STOCK)
    queue_opens_before_seconds: int | None = rule(int, required=False, min=0, max=7 * 86400)
    admissions_per_second: int | None = rule(int, required=False, min=1, max=10_000)
    purchase_window_seconds: int | None = rule(int, required=False, min=10, max=86400)
    entries_open_time: int | None = rule("time", required=False)


IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


@dataclass(frozen=True, kw_only=True)
class NewImage:
    content_type: str = rule(str, choices=IMAGE_TYPES, description="the image's type; at most 5 MB")


# --- orders -----------------------------------------------------------------------------------
MAX_CREATOR_QUERY = 100  # GET /creators?query=


@dataclass(frozen=True, kw_only=True)
class ShippingAddress:
    name: str = rule(str, min=1, max=100)
    line1: str = rule(str, min=1, max=200)
    line2: str | None = rule(str, required=False, max=200)
    city: str = rule(str, min=1, max=100)
    region: str | None = rule(str, required=False, max=100)
    postal_code: str = rule(str, min=1, max=20)
    country: str = rule("country", description="ISO 3166-1 alpha-2, such as US")


@dataclass(frozen=True, kw_only=True)
class NewOrder:
    drop_id: str = rule("id")
    quantity: int = rule(int, min=1, max=MAX_QUANTITY)
    payment_token: str = rule(str, min=1, max=255)
    # What GET /drops/{id}/queue/me or /entries/me hands an admitted user.
    admission_token: str | None = rule(
        str, required=False, min=1, max=1024, description="required for queue and draw drops"
    )
    shipping_address: ShippingAddress | None = rule(
        ShippingAddress, required=False, description="where to send the order; shown to the drop's creator"
    )


# --- queues and draws -------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class JoinLine:
    """POST /drops/{id}/queue and /drops/{id}/entries: no body, or an empty JSON object."""

    schema_description: ClassVar[str] = "no body, or an empty object"


# --- notifications ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MarkRead:
    schema_description: ClassVar[str] = "exactly one of the two"

    up_to: int | None = rule("time", required=False, description="every notification at or before this time")
    notification_id: str | None = rule(str, required=False, min=1, max=64)


# --- e-mail and Web Push (docs/notification-channels.md) --------------------------------------
# What each channel can tell a user; a preference is one switch per channel and event.
EMAIL_EVENTS = (EventType.DROP_STARTED.value, EventType.ORDER_CONFIRMED.value, FrameType.DRAW_WON.value)
PUSH_EVENTS = EMAIL_EVENTS
MAX_PUSH_ENDPOINT = 2048


@dataclass(frozen=True, kw_only=True)
class NotificationPreferences:
    schema_description: ClassVar[str] = "switches to change; those not sent keep their value"

    email: dict[str, bool] | None = rule(dict, required=False, keys=EMAIL_EVENTS)
    web_push: dict[str, bool] | None = rule(dict, required=False, keys=PUSH_EVENTS)


@dataclass(frozen=True, kw_only=True)
class PushSubscription:
    schema_description: ClassVar[str] = "a browser's PushSubscription.toJSON()"

    endpoint: str = rule(str, min=1, max=MAX_PUSH_ENDPOINT, description="the push service's URL for this browser")
    keys: dict[str, str] = rule(dict, keys=("p256dh", "auth"), item=str, max=256, every_key=True)
    expirationTime: int | None = rule(int, required=False, min=0)  # the browser's own name


@dataclass(frozen=True, kw_only=True)
class PushUnsubscription:
    endpoint: str = rule(str, min=1, max=MAX_PUSH_ENDPOINT)


# --- WebSocket frames (docs/api.md) ----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Watch:
    """The fields of a subscribe or unsubscribe frame besides its action."""

    drop_id: str = rule("id")


REQUEST_BODIES: tuple[type, ...] = (
    SignUp,
    Confirm,
    LogIn,
    Refresh,
    NewCreator,
    NewProduct,
    NewDrop,
    NewOrder,
    JoinLine,
    DropChanges,
    NewImage,
    MarkRead,
    NotificationPreferences,
    PushSubscription,
    PushUnsubscription,
)
