"""The storefront's routes (docs/api.md): creator search, order cancellation, a drop's buyers, changing
and cancelling a drop, product images. A Chalice Blueprint that app.py registers; each handler only
wires a request to its domain module, with the same path id checks and error mapping as app.py's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response
from chalice.app import Request

from chalicelib.core.errors import DropNotFoundError, OrderNotFoundError, ProductNotFoundError
from chalicelib.core.validation import check_path_ids, parse_command, parse_optional_command
from chalicelib.domain import drop_changes, fulfilment, images, order_changes, search
from chalicelib.edge.web import caller_id, guarded, json_response
from chalicelib.schema.commands import DropChanges, JoinLine, NewImage
from chalicelib.schema.pagination import parse_limit
from chalicelib.wiring import bootstrap

blueprint = Blueprint(__name__)
cognito = bootstrap.user_pool_authorizer("LiveDropUsers")

_PATH_IDS = {"product_id": ProductNotFoundError, "drop_id": DropNotFoundError, "order_id": OrderNotFoundError}


def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """blueprint.route with path ids checked and chalicelib.edge.web's error mapping applied."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(**path_params: Any) -> Any:
            check_path_ids(path_params, _PATH_IDS)
            return view(**path_params)

        return blueprint.route(path, **options)(guarded(checked))

    return register


def request() -> Request:
    current = blueprint.current_request
    if current is None:
        raise RuntimeError("no request is being served")
    return current


def query(name: str) -> str | None:
    params = request().query_params
    return None if params is None else params.get(name)


def caller() -> str:
    return caller_id(request())


def no_body() -> None:
    """A route documented as taking no body: none, or an empty JSON object; anything else is 400."""
    parse_optional_command(request().raw_body, JoinLine)


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
    return json_response(drop_changes.change_drop(caller(), drop_id, parse_command(request().raw_body, DropChanges)))


@route("/drops/{drop_id}/cancel", methods=["POST"], authorizer=cognito)
def cancel_drop(drop_id: str) -> Any:
    no_body()
    return json_response(drop_changes.cancel_drop(caller(), drop_id))


@route("/products/{product_id}/images", methods=["POST"], authorizer=cognito)
def add_product_image(product_id: str) -> Any:
    return json_response(images.new_upload(caller(), product_id, parse_command(request().raw_body, NewImage)), 201)
