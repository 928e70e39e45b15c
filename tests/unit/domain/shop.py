"""Users, creators, products and drops made through the domain functions themselves (no HTTP).

Every domain import of the domain tier's set-up is here, in one place, so a move of chalicelib's
modules is one edit.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import accounts, catalog, orders
from chalicelib.schema.commands import NewCreator, NewDrop, NewOrder, NewProduct
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import User

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def new_user(name: str = "Fan") -> str:
    """A signed-up user's row (sign-up itself is Cognito's, covered by the API tier)."""
    user_id = uuid.uuid4().hex
    User(user_id=user_id, email=f"{user_id}@example.com", name=name, created_at=now_ms()).save()
    return user_id


@dataclass(frozen=True)
class Shop:
    owner: str
    creator_id: str
    product_id: str


def new_shop(price_cents: int = 1500, currency: str = "EUR") -> Shop:
    owner = new_user("Owner")
    creator_id = accounts.become_creator(owner, NewCreator(name="Shop", profile=None))["creator_id"]
    product = catalog.create_product(
        owner, creator_id, NewProduct(name="Tee", description=None, price_cents=price_cents, currency=currency)
    )
    return Shop(owner, creator_id, product["product_id"])


def drop_command(shop: Shop, start_in_ms: int = -MINUTE_MS, end_in_ms: int = HOUR_MS, **fields: Any) -> NewDrop:
    now = now_ms()
    values: dict[str, Any] = {"stock": 10, **fields}
    return NewDrop(product_id=shop.product_id, start_time=now + start_in_ms, end_time=now + end_in_ms, **values)


def new_drop(shop: Shop, start_in_ms: int = -MINUTE_MS, end_in_ms: int = HOUR_MS, **fields: Any) -> dict[str, Any]:
    """A drop created as the API creates it (schedules included); live now unless told otherwise."""
    return catalog.create_drop(shop.owner, shop.creator_id, drop_command(shop, start_in_ms, end_in_ms, **fields))


def order(
    user_id: str,
    drop_id: str,
    quantity: int = 1,
    key: str | None = None,
    token: str = "tok_visa",
    admission_token: str | None = None,
) -> orders.PlacedOrder:
    new = NewOrder(drop_id=drop_id, quantity=quantity, payment_token=token, admission_token=admission_token)
    return orders.place_order(user_id, key or uuid.uuid4().hex, new)


def examples(count: int) -> int:
    """Hypothesis examples of a domain property: `count` keeps `make unit` within its 30 s;
    LIVEDROP_DOMAIN_EXAMPLES=10 runs ten times as many (a longer search, as `make fuzz` is for the API)."""
    return max(1, int(count * float(os.environ.get("LIVEDROP_DOMAIN_EXAMPLES", "1"))))
