"""The responses of the API: what each route answers on success, typed, declared once.

Each response body is a TypedDict (a key that may be left out is NotRequired, a value that may be
null is `X | None`, statuses are the StrEnums of chalicelib.core.statuses); `Annotated[..., Schema(...)]`
adds what a type cannot say (a format, a bound, a description). The OpenAPI document's response
schemas are generated from these (chalicelib.edge.openapi), and `ROUTES` says which route answers
which, per status; the API tests check every success response they receive against the document.
Every object is closed: a key not declared here is a drift the tests report. The class names are the
names of the document's response components.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from chalicelib.core.statuses import RELEASED, DropStatus, OrderStatus
from chalicelib.schema.commands import EMAIL_EVENTS, SALE_MODES, ShippingAddress


class Schema:
    """JSON Schema keywords a field's type cannot carry; `keys` makes a dict an object of exactly those keys."""

    def __init__(self, keys: tuple[str, ...] = (), **keywords: Any) -> None:
        self.keys = keys
        self.keywords = keywords


Time = Annotated[str, Schema(format="date-time")]  # UTC ISO-8601 with Z
Count = Annotated[int, Schema(minimum=0)]
Url = Annotated[str, Schema(format="uri")]
NextPage = Annotated[str | None, Schema(description="the token of the next page (?page=), null on the last")]
ProductStatus = Literal["draft"] | DropStatus  # a product shows its latest drop's status, or draft
CHANNELS = ("email", "web_push")


# --- health, auth and users -------------------------------------------------------------------
class Health(TypedDict):
    status: Literal["ok"]
    stage: str
    backend: Literal["ok"]


class SignedUp(TypedDict):
    user_id: str
    email: str
    name: str


class Tokens(TypedDict):
    id_token: str
    access_token: str
    refresh_token: str
    expires_in: Annotated[int, Schema(description="seconds the id and access tokens are valid")]


class RefreshedTokens(TypedDict):
    id_token: str
    access_token: str
    expires_in: int


class Me(TypedDict):
    user_id: str
    email: str
    name: str
    creator_id: str | None


# --- creators and follows ---------------------------------------------------------------------
class Creator(TypedDict):
    creator_id: str
    name: str
    profile: str | None
    follower_count: Count


class CreatorPage(TypedDict):
    items: list[Creator]
    next_page: NextPage


class Following(TypedDict):
    creator_id: str
    user_id: str
    following: bool


class FollowState(TypedDict):
    following: bool


class FollowedCreator(TypedDict):
    creator_id: str
    name: str
    followed_at: Time


class FollowedCreatorPage(TypedDict):
    items: list[FollowedCreator]
    next_page: NextPage


class Follower(TypedDict):
    user_id: str
    followed_at: Time


class FollowerPage(TypedDict):
    items: list[Follower]
    next_page: NextPage


# --- products and drops -----------------------------------------------------------------------
class Product(TypedDict):
    product_id: str
    creator_id: str
    name: str
    description: str | None
    price_cents: Count
    currency: str
    status: ProductStatus
    created_at: Time
    images: Annotated[list[Url], Schema(description="the product's image URLs, in upload order")]


class ProductPage(TypedDict):
    items: list[Product]
    next_page: NextPage


class ImageUpload(TypedDict):
    upload_url: Annotated[
        Url, Schema(description="POST the fields and then the file (as `file`) here, as multipart/form-data")
    ]
    method: Literal["POST"]
    fields: dict[str, str]
    image_url: Annotated[Url, Schema(description="where the image is served once uploaded")]
    max_bytes: int
    expires_at: Time


class QueueSettings(TypedDict):
    opens_at: Time
    admissions_per_second: int
    purchase_window_seconds: int | None


class DrawSettings(TypedDict):
    entries_open_at: Time
    draw_at: Time
    purchase_window_seconds: int | None
    commitment: Annotated[str, Schema(description="sha256 (hex) of the seed's ASCII text, published when entries open")]
    seed: Annotated[str | None, Schema(description="64 hex digits, published once drawn")]
    drawn_at: Time | None
    released_at: Annotated[
        Time | None,
        Schema(description="set when the draw order ran out with units left: from then on they sell first-come"),
    ]


class Drop(TypedDict):
    drop_id: str
    product_id: str
    creator_id: str
    start_time: Time
    end_time: Time
    initial_stock: int
    stock: Count
    status: DropStatus
    per_user_limit: int | None
    low_stock_threshold: int | None
    price_cents: Count
    currency: str
    sale_mode: Annotated[str, Schema(enum=list(SALE_MODES))]
    stock_shards: Annotated[int, Schema(minimum=1)]
    queue: QueueSettings | None
    draw: DrawSettings | None


class DropPage(TypedDict):
    items: list[Drop]
    next_page: NextPage


# What a drop's creator sees of its sales (GET /creators/{id}/drops, GET /drops/{id}/sales).
SALES_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED, *RELEASED)
OrderCounts = Annotated[dict[str, Count], Schema(keys=tuple(SALES_STATUSES))]


class _SalesFigures(TypedDict):  # the fields CreatorDrop and DropSales add to a drop (no route answers it alone)
    orders: OrderCounts
    units_sold: Count
    units_reserved: Count
    revenue_cents: Count


class CreatorDrop(Drop, _SalesFigures):
    pass


class CreatorDropPage(TypedDict):
    items: list[CreatorDrop]
    next_page: NextPage


class RecentOrder(TypedDict):
    created_at: Time
    quantity: Annotated[int, Schema(minimum=1)]
    status: OrderStatus


class SalesPoint(TypedDict):
    at: Annotated[Time, Schema(description="the slot's start")]
    sold: Annotated[Count, Schema(description="units of confirmed orders placed in the slot")]
    sold_total: Count
    stock: Annotated[Count, Schema(description="initial_stock - sold_total")]


SlotSeconds = Annotated[int, Schema(minimum=60)]
LINE_SERIES = "from the line's opening up to now, in slots of slot_seconds: the totals at each slot's end"


class QueueLinePoint(TypedDict):
    at: Time
    joins: Count
    admissions: Count


class QueueLineFigures(TypedDict):
    joins: Annotated[Count, Schema(description="users who joined the line")]
    admissions: Annotated[Count, Schema(description="positions the serving counter has admitted")]
    slot_seconds: SlotSeconds
    series: Annotated[list[QueueLinePoint], Schema(maxItems=40, description=LINE_SERIES)]


class DrawLinePoint(TypedDict):
    at: Time
    entries: Count
    winners: Count


class DrawLineFigures(TypedDict):
    entries: Annotated[Count, Schema(description="entries in the draw")]
    winners: Annotated[Count, Schema(description="entries sent draw_won")]
    slot_seconds: SlotSeconds
    series: Annotated[list[DrawLinePoint], Schema(maxItems=40, description=LINE_SERIES)]


class DropSales(Drop, _SalesFigures):
    recent_orders: Annotated[list[RecentOrder], Schema(maxItems=10)]
    series_slot_seconds: Annotated[SlotSeconds, Schema(description="the width of one slot of `series`")]
    series: Annotated[
        list[SalesPoint],
        Schema(maxItems=120, description="the drop's sale from its start up to now, in slots of series_slot_seconds"),
    ]
    line: Annotated[QueueLineFigures | DrawLineFigures | None, Schema(description="null for a first-come drop")]


class CancelledDrop(Drop):
    orders_cancelled: Annotated[Count, Schema(description="unpaid orders this call cancelled")]
    orders_refunded: Annotated[Count, Schema(description="paid orders this call refunded")]
    settling: Annotated[bool, Schema(description="true when orders are left to settle: call again")]


# --- waiting rooms and draws ------------------------------------------------------------------
class LinePlace(TypedDict):
    drop_id: str
    sale_mode: Literal["queue", "draw"]
    joined_at: Time
    position: Annotated[
        int | None, Schema(description="queue position or draw position; null until the line is ordered at the start")
    ]
    state: Literal["waiting", "admitted", "expired", "bought"]
    admission_token: Annotated[
        str | None, Schema(description="while admitted: send it as admission_token with POST /orders")
    ]
    admission_expires_at: Time | None
    entry_id: NotRequired[
        Annotated[str, Schema(description="draw only: the public id the draw order is computed from")]
    ]
    serving: NotRequired[
        Annotated[int, Schema(description="GET .../me only: positions up to this one have been admitted")]
    ]


class DrawEntry(TypedDict):
    entry_id: str
    position: int | None


class DrawEntryPage(TypedDict):
    items: list[DrawEntry]
    next_page: NextPage


# --- orders -----------------------------------------------------------------------------------
class Order(TypedDict):
    order_id: str
    user_id: str
    drop_id: str
    quantity: Annotated[int, Schema(minimum=1)]
    amount_cents: Count
    currency: str
    status: OrderStatus
    created_at: Time
    expires_at: Time
    payment_retrying: NotRequired[
        Annotated[
            Literal[True],
            Schema(
                description="Present (true) while the order is pending_payment and a charge the card provider "
                "could not process is being retried."
            ),
        ]
    ]
    shipping_address: NotRequired[ShippingAddress]


class OrderPage(TypedDict):
    items: list[Order]
    next_page: NextPage


class Buyer(TypedDict):
    order_id: str
    user_id: str
    quantity: Annotated[int, Schema(minimum=1)]
    amount_cents: Count
    currency: str
    created_at: Time
    shipping_address: ShippingAddress | None


class BuyerPage(TypedDict):
    items: list[Buyer]
    next_page: NextPage


class WebhookReceived(TypedDict):
    received: Literal[True]


# --- notifications ----------------------------------------------------------------------------
class Notification(TypedDict):
    notification_id: str
    type: str
    drop_id: str | None
    order_id: str | None
    created_at: Time
    read: bool
    data: Annotated[
        dict[str, Any],
        Schema(
            description="the event's frame data (drop_id, order_id, stock, product_id, creator_id, those that"
            " apply): the stock of a stock_low or sold_out"
        ),
    ]


class NotificationPage(TypedDict):
    items: list[Notification]
    next_page: NextPage
    unread: Annotated[Count, Schema(description="how many of the user's notifications are unread (all pages)")]


class MarkedRead(TypedDict):
    marked: Count
    unread: Count


Switches = Annotated[dict[str, bool], Schema(keys=EMAIL_EVENTS)]


class NotificationSettings(TypedDict):
    email: Switches
    web_push: Switches
    updated_at: Annotated[Time | None, Schema(description="null until the user first changes a switch")]


class StoredPushSubscription(TypedDict):
    endpoint: str
    subscription_id: str


class VapidPublicKey(TypedDict):
    public_key: Annotated[str, Schema(description="base64url of the uncompressed P-256 point")]


class Unsubscribe(TypedDict):
    channel: Annotated[str, Schema(enum=list(CHANNELS))]
    event: Annotated[str, Schema(enum=list(EMAIL_EVENTS))]
    enabled: bool


# --- which route answers which ------------------------------------------------------------------
# (method, path) -> {status: the body's type, or None for no body}. Other media types a route may also
# answer with (CSV, HTML) are described in the document itself.
ROUTES: dict[tuple[str, str], dict[int, Any]] = {
    ("GET", "/health"): {200: Health},
    ("GET", "/openapi.json"): {200: dict[str, Any]},
    ("POST", "/auth/signup"): {201: SignedUp},
    ("POST", "/auth/confirm"): {204: None},
    ("POST", "/auth/login"): {200: Tokens},
    ("POST", "/auth/refresh"): {200: RefreshedTokens},
    ("GET", "/me"): {200: Me},
    ("POST", "/creators"): {201: Creator},
    ("GET", "/creators"): {200: CreatorPage},
    ("GET", "/creators/{creator_id}"): {200: Creator},
    ("POST", "/creators/{creator_id}/follow"): {200: Following},
    ("DELETE", "/creators/{creator_id}/follow"): {204: None},
    ("GET", "/users/{user_id}/following"): {200: FollowedCreatorPage},
    ("GET", "/creators/{creator_id}/followers"): {200: FollowerPage},
    ("GET", "/users/{user_id}/follows/{creator_id}"): {200: FollowState},
    ("POST", "/creators/{creator_id}/products"): {201: Product},
    ("GET", "/products"): {200: ProductPage},
    ("GET", "/products/{product_id}"): {200: Product, 304: None},
    ("POST", "/products/{product_id}/images"): {201: ImageUpload},
    ("POST", "/creators/{creator_id}/drops"): {201: Drop},
    ("GET", "/creators/{creator_id}/drops"): {200: CreatorDropPage},
    ("GET", "/drops"): {200: DropPage},
    ("GET", "/drops/{drop_id}"): {200: Drop, 304: None},
    ("PATCH", "/drops/{drop_id}"): {200: Drop},
    ("POST", "/drops/{drop_id}/cancel"): {200: CancelledDrop},
    ("GET", "/drops/{drop_id}/sales"): {200: DropSales},
    ("GET", "/drops/{drop_id}/buyers"): {200: BuyerPage},
    ("POST", "/drops/{drop_id}/queue"): {201: LinePlace, 200: LinePlace},
    ("GET", "/drops/{drop_id}/queue/me"): {200: LinePlace},
    ("POST", "/drops/{drop_id}/entries"): {201: LinePlace, 200: LinePlace},
    ("GET", "/drops/{drop_id}/entries"): {200: DrawEntryPage},
    ("GET", "/drops/{drop_id}/entries/me"): {200: LinePlace},
    ("POST", "/orders"): {201: Order},
    ("GET", "/orders/{order_id}"): {200: Order},
    ("POST", "/orders/{order_id}/cancel"): {200: Order},
    ("GET", "/users/{user_id}/orders"): {200: OrderPage},
    ("POST", "/payments/webhook"): {200: WebhookReceived},
    ("GET", "/users/{user_id}/notifications"): {200: NotificationPage},
    ("POST", "/users/{user_id}/notifications/read"): {200: MarkedRead},
    ("GET", "/users/{user_id}/notification-settings"): {200: NotificationSettings},
    ("PUT", "/users/{user_id}/notification-settings"): {200: NotificationSettings},
    ("POST", "/users/{user_id}/push-subscriptions"): {201: StoredPushSubscription},
    ("DELETE", "/users/{user_id}/push-subscriptions"): {204: None},
    ("GET", "/push/vapid-public-key"): {200: VapidPublicKey},
    ("GET", "/unsubscribe"): {200: Unsubscribe},
    ("POST", "/unsubscribe"): {200: Unsubscribe},
}
