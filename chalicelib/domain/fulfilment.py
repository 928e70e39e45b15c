"""GET /drops/{id}/buyers: a drop's confirmed orders with their quantities and shipping addresses,
for the creator who ships them, as JSON pages or as CSV for a fulfilment tool.

The orders come from the Orders `by_drop` index (keys only) in the order they were placed, their rows
read in one BatchGetItem per page; orders that are not confirmed are left out, so a page reads on
(a bounded number of times) until it holds `limit` buyers."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from chalicelib.core.errors import InvalidPageError
from chalicelib.core.statuses import OrderStatus
from chalicelib.core.validation import format_time
from chalicelib.domain.catalog import owned_drop
from chalicelib.domain.orders import orders_of
from chalicelib.schema.models import Order
from chalicelib.schema.pagination import decode_page, encode_page

_PAGE = {"order_id": "S", "drop_id": "S", "created_at": "N"}
MAX_READS = 5  # index pages one request reads at most
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")
CSV_COLUMNS = ("order_id", "created_at", "quantity", "amount_cents", "currency", *ADDRESS_FIELDS)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): such a cell is
# written with a leading apostrophe, which spreadsheets show as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def buyer_view(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "quantity": int(order.quantity),
        "amount_cents": int(order.amount_cents),
        "currency": order.currency,
        "created_at": format_time(order.created_at),
        "shipping_address": json.loads(order.shipping_address) if order.shipping_address else None,
    }


def buyers(user_id: str, drop_id: str, limit: int, page: str | None) -> dict[str, Any]:
    """One page of the drop's confirmed orders, oldest first."""
    owned_drop(user_id, drop_id)
    position = decode_page(page, _PAGE)
    if position is not None and position["drop_id"]["S"] != drop_id:
        raise InvalidPageError("page belongs to another listing")
    items: list[dict[str, Any]] = []
    for _ in range(MAX_READS):
        results = Order.by_drop.query(drop_id, limit=limit, last_evaluated_key=position)
        keys = list(results)
        rows = {order.order_id: order for order in orders_of([key.order_id for key in keys])}
        for key in keys:
            order = rows.get(key.order_id)
            if order is not None and order.status == OrderStatus.CONFIRMED:
                items.append(buyer_view(order))
                if len(items) == limit:
                    after = {"order_id": {"S": key.order_id}, "drop_id": {"S": drop_id}}
                    return {
                        "items": items,
                        "next_page": encode_page({**after, "created_at": {"N": str(key.created_at)}}),
                    }
        position = results.last_evaluated_key
        if not position:
            break
    return {"items": items, "next_page": encode_page(position)}


def as_csv(listing: dict[str, Any]) -> str:
    """A page of buyers as CSV (RFC 4180: a header row, quoted where needed, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in listing["items"]:
        address = item["shipping_address"] or {}
        row = [*(item[name] for name in CSV_COLUMNS[:5]), *(address.get(name) for name in ADDRESS_FIELDS)]
        writer.writerow([safe_cell(value) for value in row])
    return out.getvalue()


def safe_cell(value: Any) -> str:
    """A cell's text, never read as a formula by a spreadsheet."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
