"""The storefront's routes (docs/api.md): creator search, order cancellation, a drop's buyers, changing
and cancelling a drop, product images. A Chalice Blueprint that app.py registers; each handler only
wires a request to its domain module, with the same path id checks and error mapping as app.py's
(chalicelib.edge.routing)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.domain import drop_changes, fulfilment, images, order_changes, search
from chalicelib.edge.routing import Routes
from chalicelib.edge.web import json_response
from chalicelib.schema.commands import DropChanges, NewImage
from chalicelib.schema.pagination import parse_limit
from chalicelib.wiring import bootstrap

blueprint = Blueprint(__name__)
cognito = bootstrap.user_pool_authorizer("LiveDropUsers")
routes = Routes(blueprint)
route, request, body, no_body, query, caller = (
    routes.route,
    routes.request,
    routes.body,
    routes.no_body,
    routes.query,
    routes.caller,
)


@route("/creators", methods=["GET"])
def search_creators() -> Any:
    return json_response(search.search_creators(query("query"), parse_limit(query("limit")), query("page")))


@route("/orders/{order_id}/cancel", methods=["POST"], authorizer=cognito)
def cancel_order(order_id: str) -> Any:
    no_body()
    return json_response(order_changes.cancel_order(caller(), order_id))


@route("/drops/{drop_id}/buyers", methods=["GET"], authorizer=cognito)
def drop_buyers(drop_id: str) -> Any:
    listing = fulfilment.buyers(caller(), drop_id, parse_limit(query("limit")), query("page"))
    if "text/csv" not in str(request().headers.get("accept") or ""):
        return json_response(listing)
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{drop_id}-buyers.csv"',
    }
    if listing["next_page"]:
        headers["Next-Page"] = listing["next_page"]
    return Response(body=fulfilment.as_csv(listing), status_code=200, headers=headers)


@route("/drops/{drop_id}", methods=["PATCH"], authorizer=cognito)
def change_drop(drop_id: str) -> Any:
    return json_response(drop_changes.change_drop(caller(), drop_id, body(DropChanges)))


@route("/drops/{drop_id}/cancel", methods=["POST"], authorizer=cognito)
def cancel_drop(drop_id: str) -> Any:
    no_body()
    return json_response(drop_changes.cancel_drop(caller(), drop_id))


@route("/products/{product_id}/images", methods=["POST"], authorizer=cognito)
def add_product_image(product_id: str) -> Any:
    return json_response(images.new_upload(caller(), product_id, body(NewImage)), 201)
