"""LiveDrop's Chalice app: routes and event handlers only; the logic lives in chalicelib."""

from __future__ import annotations

from typing import Any

from chalice import Rate
from chalice.app import WebsocketEvent

from chalicelib.core.config import get_settings
from chalicelib.core.errors import LiveDropError
from chalicelib.core.observability import observe
from chalicelib.delivery import consumers as notification_consumers
from chalicelib.delivery import events as domain_event_source
from chalicelib.delivery import live_stock as stock_pushes
from chalicelib.delivery import notifications, serving, webpush
from chalicelib.delivery import payments as payment_service
from chalicelib.delivery.line_slices import handle_slice_batch
from chalicelib.domain import (
    accounts,
    catalog,
    drop_listing,
    follows,
    lines,
    orders,
    preferences,
    sales,
    scheduling,
    settlement,
)
from chalicelib.domain import connections as ws_connections
from chalicelib.edge import health as health_check
from chalicelib.edge import openapi
from chalicelib.edge.routing import Routes
from chalicelib.edge.web import (
    chalice_errors_in_api_shape,
    conditional_json,
    error_response,
    json_response,
    placed_order_response,
    unsubscribe_response,
)
from chalicelib.schema.commands import (
    Confirm,
    LogIn,
    MarkRead,
    NewCreator,
    NewDrop,
    NewOrder,
    NewProduct,
    NotificationPreferences,
    PushSubscription,
    PushUnsubscription,
    Refresh,
    SignUp,
)
from chalicelib.schema.pagination import parse_limit
from chalicelib.schema.topology import Fn
from chalicelib.wiring import bootstrap, storefront

# Nothing here reads the settings: the composition root does, on first use (chalicelib.wiring.bootstrap).
app = bootstrap.chalice_app("livedrop")
# Chalice packages on_ws_* handlers only with this flag (the WebSocket API is still "experimental" there).
app.experimental_feature_flags.update(["WEBSOCKETS"])
cognito = bootstrap.user_pool_authorizer("LiveDropUsers")
app.register_middleware(observe, "all")
app.register_middleware(chalice_errors_in_api_shape, "http")
# Views register and read their request through these (chalicelib.edge.routing, shared with the storefront).
routes = Routes(app)
route, request, body, query, caller, me_or_403 = (
    routes.route,
    routes.request,
    routes.body,
    routes.query,
    routes.caller,
    routes.me_or_403,
)
# Creator search, order and drop changes, buyers and product images (chalicelib.wiring.storefront).
app.register_blueprint(storefront.blueprint)


@route("/health", methods=["GET"])
def health() -> Any:
    return json_response(health_check.check(get_settings().stage))


@route("/openapi.json", methods=["GET"])
def openapi_document() -> Any:
    return json_response(openapi.document())


# --- auth and users ---------------------------------------------------------------------------
@route("/auth/signup", methods=["POST"])
def sign_up() -> Any:
    return json_response(accounts.sign_up(body(SignUp)), 201)


@route("/auth/confirm", methods=["POST"])
def confirm() -> Any:
    accounts.confirm(body(Confirm))
    return json_response(None, 204)


@route("/auth/login", methods=["POST"])
def log_in() -> Any:
    return json_response(accounts.log_in(body(LogIn)))


@route("/auth/refresh", methods=["POST"])
def refresh() -> Any:
    return json_response(accounts.refresh(body(Refresh)))


@route("/me", methods=["GET"], authorizer=cognito)
def me() -> Any:
    return json_response(accounts.me(caller()))


@route("/creators", methods=["POST"], authorizer=cognito)
def create_creator() -> Any:
    new = body(NewCreator)
    return json_response(accounts.become_creator(caller(), new), 201)


@route("/creators/{creator_id}", methods=["GET"])
def get_creator(creator_id: str) -> Any:
    return json_response(accounts.creator_view(accounts.get_creator(creator_id)))


# --- follows ----------------------------------------------------------------------------------
@route("/creators/{creator_id}/follow", methods=["POST"], authorizer=cognito)
def follow(creator_id: str) -> Any:
    return json_response(follows.follow(caller(), creator_id))


@route("/creators/{creator_id}/follow", methods=["DELETE"], authorizer=cognito, check_ids=False)
def unfollow(creator_id: str) -> Any:
    follows.unfollow(caller(), creator_id)
    return json_response(None, 204)


@route("/users/{user_id}/following", methods=["GET"], authorizer=cognito)
def following(user_id: str) -> Any:
    return json_response(follows.list_following(me_or_403(user_id), parse_limit(query("limit")), query("page")))


@route("/creators/{creator_id}/followers", methods=["GET"], authorizer=cognito)
def followers(creator_id: str) -> Any:
    caller()
    return json_response(follows.list_followers(creator_id, parse_limit(query("limit")), query("page")))


@route("/users/{user_id}/follows/{creator_id}", methods=["GET"], authorizer=cognito, check_ids=False)
def follows_creator(user_id: str, creator_id: str) -> Any:
    return json_response({"following": follows.is_following(me_or_403(user_id), creator_id)})


# --- products and drops -----------------------------------------------------------------------
@route("/creators/{creator_id}/products", methods=["POST"], authorizer=cognito)
def create_product(creator_id: str) -> Any:
    new = body(NewProduct)
    return json_response(catalog.create_product(caller(), creator_id, new), 201)


@route("/products", methods=["GET"])
def list_products() -> Any:
    return json_response(catalog.list_products(query("status"), parse_limit(query("limit")), query("page")))


@route("/products/{product_id}", methods=["GET"])
def get_product(product_id: str) -> Any:
    return conditional_json(catalog.get_product(product_id), app.current_request, max_age=5)


@route("/creators/{creator_id}/drops", methods=["POST"], authorizer=cognito)
def create_drop(creator_id: str) -> Any:
    new = body(NewDrop)
    return json_response(catalog.create_drop(caller(), creator_id, new), 201)


@route("/drops", methods=["GET"])
def list_drops() -> Any:
    return json_response(drop_listing.list_drops(query("status"), parse_limit(query("limit")), query("page")))


@route("/drops/{drop_id}", methods=["GET"])
def get_drop(drop_id: str) -> Any:
    return conditional_json(catalog.get_drop(drop_id), app.current_request, max_age=1)


@app.lambda_function(name=Fn.DROP_LIFECYCLE)
def drop_lifecycle(event: dict[str, Any], context: Any) -> dict[str, str]:
    """EventBridge Scheduler target: start or end one drop on time."""
    return {"result": scheduling.run_lifecycle(event)}


@app.schedule(Rate(1, unit=Rate.MINUTES), name=Fn.SWEEPER)
def sweeper(event: Any) -> dict[str, int]:
    """Every minute: start/end drops whose schedules were missed, follow stock to sold_out and back,
    expire unpaid reservations (not DynamoDB TTL, which deletes days late)."""
    swept = scheduling.sweep()
    swept["expired"] = settlement.expire_overdue()
    return swept


# --- queues and draws (docs/sale-modes.md) -----------------------------------------------------
@route("/drops/{drop_id}/queue", methods=["POST"], authorizer=cognito)
def join_queue(drop_id: str) -> Any:
    routes.no_body()  # the docs' "no body": anything else is refused
    place, created = lines.join_queue(caller(), drop_id)
    return json_response(place, 201 if created else 200)


@route("/drops/{drop_id}/queue/me", methods=["GET"], authorizer=cognito)
def my_queue_place(drop_id: str) -> Any:
    return json_response(lines.my_place(caller(), drop_id, catalog.QUEUE))


@route("/drops/{drop_id}/entries", methods=["POST"], authorizer=cognito)
def enter_draw(drop_id: str) -> Any:
    routes.no_body()
    entry, created = lines.enter_draw(caller(), drop_id)
    return json_response(entry, 201 if created else 200)


@route("/drops/{drop_id}/entries", methods=["GET"])
def draw_entries(drop_id: str) -> Any:
    return json_response(lines.list_entries(drop_id, parse_limit(query("limit")), query("page")))


@route("/drops/{drop_id}/entries/me", methods=["GET"], authorizer=cognito)
def my_draw_entry(drop_id: str) -> Any:
    return json_response(lines.my_place(caller(), drop_id, catalog.DRAW))


@app.schedule(Rate(1, unit=Rate.MINUTES), name=Fn.ADMISSIONS)
def admissions(event: Any) -> dict[str, int]:
    """Seals, orders and serves queue and draw lines, every admission_tick_seconds."""
    return serving.run(event)


@app.lambda_function(name=Fn.LINE_SLICES)
def line_slices(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The lines queue -> slices of placing a line at its start, or closing a draw at its end."""
    return handle_slice_batch(event, context)


# --- orders and payments ----------------------------------------------------------------------


@route("/orders", methods=["POST"], authorizer=cognito)
def place_order() -> Any:
    user_id = caller()
    key = orders.idempotency_key_from(request().headers.get("idempotency-key"))
    return placed_order_response(orders.place_order(user_id, key, body(NewOrder)))


@route("/orders/{order_id}", methods=["GET"], authorizer=cognito)
def get_order(order_id: str) -> Any:
    return json_response(orders.get_order(caller(), order_id))


@route("/users/{user_id}/orders", methods=["GET"], authorizer=cognito)
def list_user_orders(user_id: str) -> Any:
    return json_response(orders.list_orders(me_or_403(user_id), parse_limit(query("limit")), query("page")))


@route("/payments/webhook", methods=["POST"])
def payment_webhook() -> Any:
    raw, signature = request().raw_body or b"", request().headers.get("stripe-signature")
    # Stripe signs the bytes it sent; Chalice hands a text body over as str.
    return json_response(payment_service.handle_webhook(raw.encode() if isinstance(raw, str) else raw, signature))


@app.lambda_function(name=Fn.DOMAIN_EVENTS)
def domain_events(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """DynamoDB Streams of Drops and Orders -> domain events on the events topic."""
    return domain_event_source.handle_stream_batch(event, context)


@app.lambda_function(name=Fn.PAYMENTS)
def payments(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The payments queue (order_placed) -> charge, confirm or compensate."""
    return payment_service.handle_payment_messages(event, context)


# --- real-time notifications ---------------------------------------------------------------


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Any:
    """$connect: `?token=` must be a valid id token, else the handshake is refused with 401 (429 past
    the user's connection cap)."""
    token = (event.to_dict().get("queryStringParameters") or {}).get("token")
    try:
        ws_connections.open_connection(event.connection_id, token)
    except LiveDropError as error:
        return error_response(error)
    return None


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    """$default: subscribe, unsubscribe or ping; anything else gets an error frame and the socket stays."""
    bootstrap.pusher().reply(event.connection_id, ws_connections.client_reply(event.connection_id, event.body))


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    """$disconnect: forget the connection and its subscriptions."""
    ws_connections.close_connection(event.connection_id)


@route("/users/{user_id}/notifications", methods=["GET"], authorizer=cognito)
def user_notifications(user_id: str) -> Any:
    return json_response(notifications.inbox(me_or_403(user_id), parse_limit(query("limit")), query("page")))


@route("/users/{user_id}/notifications/read", methods=["POST"], authorizer=cognito)
def read_notifications(user_id: str) -> Any:
    user, read = me_or_403(user_id), body(MarkRead)
    return json_response(notifications.mark_read(user, read.up_to, read.notification_id))


# --- e-mail and Web Push (docs/notification-channels.md) ------------------------------------------
@route("/users/{user_id}/notification-settings", methods=["GET"], authorizer=cognito)
def notification_settings(user_id: str) -> Any:
    return json_response(preferences.get(me_or_403(user_id)))


@route("/users/{user_id}/notification-settings", methods=["PUT"], authorizer=cognito)
def change_notification_settings(user_id: str) -> Any:
    user, change = me_or_403(user_id), body(NotificationPreferences)
    return json_response(preferences.update(user, change))


@route("/users/{user_id}/push-subscriptions", methods=["POST"], authorizer=cognito)
def add_push_subscription(user_id: str) -> Any:
    user, subscription = me_or_403(user_id), body(PushSubscription)
    return json_response(webpush.subscribe(user, subscription), 201)


@route("/users/{user_id}/push-subscriptions", methods=["DELETE"], authorizer=cognito)
def remove_push_subscription(user_id: str) -> Any:
    user, gone = me_or_403(user_id), body(PushUnsubscription)
    webpush.unsubscribe(user, gone.endpoint)
    return json_response(None, 204)


@route("/push/vapid-public-key", methods=["GET"])
def vapid_public_key() -> Any:
    return json_response({"public_key": webpush.public_key()}, headers={"Cache-Control": "max-age=3600"})


@route("/unsubscribe", methods=["GET"])
def unsubscribe_preview() -> Any:
    return unsubscribe_response(preferences.describe_unsubscribe(query("token")), request(), done=False)


# RFC 8058: a mail provider's one-click POST carries `List-Unsubscribe=One-Click` as a form; a
# browser's or a script's may carry nothing. Either way the token decides.
@route("/unsubscribe", methods=["POST"], content_types=["*/*"])
def unsubscribe() -> Any:
    return unsubscribe_response(preferences.unsubscribe(query("token")), request(), done=True)


# --- the creator's view of their sales ----------------------------------------------------------
@route("/creators/{creator_id}/drops", methods=["GET"], authorizer=cognito)
def creator_drops(creator_id: str) -> Any:
    user_id = caller()
    return json_response(sales.creator_drops(user_id, creator_id, parse_limit(query("limit")), query("page")))


@route("/drops/{drop_id}/sales", methods=["GET"], authorizer=cognito)
def drop_sales(drop_id: str) -> Any:
    return json_response(sales.drop_sales(caller(), drop_id))


@app.lambda_function(name=Fn.FANOUT)
def fanout(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The notify queue (domain events) -> pushes, inbox rows and follower slices."""
    return notification_consumers.handle_notify_batch(event, context)


@app.lambda_function(name=Fn.DELIVER)
def deliver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The deliver queue (follower slices) -> inbox rows."""
    return notification_consumers.handle_deliver_batch(event, context)


@app.lambda_function(name=Fn.LIVE_STOCK)
def live_stock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The live_stock queue (stock_changed, deferred pushes, audience slices) -> coalesced pushes to viewers."""
    return stock_pushes.handle_batch(event, context)
