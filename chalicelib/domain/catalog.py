"""Products and drops: creation with ownership checks, status derived from the clock and the stock,
cached reads, and the immutable terms of a drop that the order path needs without a read."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import draws
from chalicelib.core.cache import TtlCache
from chalicelib.core.config import get_settings
from chalicelib.core.errors import (
    CreatorNotFoundError,
    DropNotFoundError,
    ForbiddenError,
    InvalidRequestError,
    ProductNotFoundError,
)
from chalicelib.core.observability import count
from chalicelib.core.statuses import DRAFT, PRODUCT_STATUSES, DropClock, DropStatus, drop_status_at
from chalicelib.core.validation import format_time
from chalicelib.domain.accounts import owned_creator
from chalicelib.schema import schedules
from chalicelib.schema import stock as shards
from chalicelib.schema.commands import SALE_MODES, NewDrop, NewProduct
from chalicelib.schema.db import Transaction, TransactionCancelledError, new_id, now_ms
from chalicelib.schema.models import DROP_HOT_ATTRIBUTES, Drop, Line, Product
from chalicelib.schema.pagination import decode_page, page_body, render_each

FIRST_COME, QUEUE, DRAW = SALE_MODES
# Defaults of the modes' settings (docs/sale-modes.md).
QUEUE_OPENS_BEFORE_SECONDS = 3600
ADMISSIONS_PER_SECOND = 50
PURCHASE_WINDOW_SECONDS = 300
_QUEUE_FIELDS = ("queue_opens_before_seconds", "admissions_per_second")
_DRAW_FIELDS = ("entries_open_time",)

# Stock moves with every order, so a drop is cached briefly; product details rarely change.
drop_cache: TtlCache[Drop] = TtlCache("drops", ttl_seconds=1.0)
product_cache: TtlCache[Product] = TtlCache("products", ttl_seconds=5.0)
terms_cache: TtlCache[DropTerms] = TtlCache("drop_terms", ttl_seconds=3600.0, max_items=10_000)


@dataclass(frozen=True)
class DropTerms:
    """What never changes once a drop exists: safe to cache for as long as a Lambda lives."""

    drop_id: str
    product_id: str
    creator_id: str
    price_cents: int
    currency: str
    per_user_limit: int | None
    start_time: int
    end_time: int
    initial_stock: int
    low_stock_at: int | None
    sale_mode: str = FIRST_COME
    stock_shards: int = 1
    purchase_window_seconds: int = PURCHASE_WINDOW_SECONDS


def sale_mode_of(drop: Drop) -> str:
    return drop.sale_mode or FIRST_COME


def shard_count_of(drop: Drop) -> int:
    return int(drop.stock_shards or 1)


def current_stock(drop: Drop) -> int:
    """The units left: the row's own stock, or its shards added up (cached briefly)."""
    if shard_count_of(drop) > 1:
        return shards.total(drop.drop_id, shard_count_of(drop))
    return int(drop.stock)


def derived_status(drop: Drop, at_ms: int | None = None) -> DropStatus:
    """The status a client sees: from the clock and the stock, whatever the scheduler did so far."""
    now = now_ms() if at_ms is None else at_ms
    clock = DropClock(now, int(drop.start_time), int(drop.end_time), lambda: current_stock(drop), drop.status)
    return drop_status_at(clock)


def _mode_view(drop: Drop) -> dict[str, Any]:
    mode = sale_mode_of(drop)
    window = None if drop.admission_seconds is None else int(drop.admission_seconds)
    queue = draw = None
    if mode == QUEUE:
        queue = {
            "opens_at": format_time(drop.opens_at),
            "admissions_per_second": int(drop.admissions_per_second or 0),
            "purchase_window_seconds": window,
        }
    elif mode == DRAW:
        drawn = drop.drawn_at is not None
        draw = {
            "entries_open_at": format_time(drop.opens_at),
            "draw_at": format_time(drop.start_time),
            "purchase_window_seconds": window,
            "commitment": drop.draw_commitment,
            # The seed stays secret until the draw: published, it lets anyone recompute the winners.
            "seed": drop.draw_seed if drawn else None,
            "drawn_at": format_time(drop.drawn_at) if drawn else None,
            # Set when the draw order ran out with units left: from then on they sell first-come.
            "released_at": format_time(drop.released_at) if drop.released_at is not None else None,
        }
    return {"sale_mode": mode, "stock_shards": shard_count_of(drop), "queue": queue, "draw": draw}


def with_hot_fields(drops: list[Drop]) -> list[Drop]:
    """Drops read through a Drops index, completed with what the index leaves out (the stock and the
    order counters) from their rows: one BatchGetItem per 100 drops."""
    missing = {drop.drop_id: drop for drop in drops if drop.stock is None}
    if missing:
        for row in Drop.batch_get(list(missing), attributes_to_get=["drop_id", *DROP_HOT_ATTRIBUTES]):
            for name in DROP_HOT_ATTRIBUTES:
                setattr(missing[row.drop_id], name, getattr(row, name))
    return [drop for drop in drops if drop.stock is not None]


def drop_view(drop: Drop) -> dict[str, Any]:
    return {
        "drop_id": drop.drop_id,
        "product_id": drop.product_id,
        "creator_id": drop.creator_id,
        "start_time": format_time(drop.start_time),
        "end_time": format_time(drop.end_time),
        "initial_stock": int(drop.initial_stock),
        "stock": current_stock(drop),
        "status": derived_status(drop),
        "per_user_limit": None if drop.per_user_limit is None else int(drop.per_user_limit),
        "low_stock_threshold": None if drop.low_stock_at is None else int(drop.low_stock_at),
        "price_cents": int(drop.price_cents),
        "currency": drop.currency,
        **_mode_view(drop),
    }


def product_view(product: Product, latest: Drop | None) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "creator_id": product.creator_id,
        "name": product.name,
        "description": product.description,
        "price_cents": int(product.price_cents),
        "currency": product.currency,
        "status": derived_status(latest) if latest is not None else product.status,
        "created_at": format_time(product.created_at),
        # In upload order: each key starts with the time its upload was granted (chalicelib.domain.images).
        "images": [f"{get_settings().images_url}/{key}" for key in sorted(product.images or ())],
    }


# --- products -----------------------------------------------------------------------------------
def create_product(user_id: str, creator_id: str, new: NewProduct) -> dict[str, Any]:
    """A new product of `creator_id`; only the creator's owner may create it."""
    owned_creator(creator_id, user_id)
    product = Product(
        product_id=new_id("pr"),
        creator_id=creator_id,
        name=new.name,
        description=new.description or "",
        price_cents=new.price_cents,
        currency=new.currency,
        status=DRAFT,
        created_at=now_ms(),
    )
    product.save(Product.product_id.does_not_exist())
    return product_view(product, None)


def _load_product(product_id: str) -> Product:
    def load() -> Product:
        try:
            return Product.get(product_id)
        except DoesNotExist:
            raise ProductNotFoundError("no such product") from None

    return _cached(product_cache, product_id, load)


def get_product(product_id: str) -> dict[str, Any]:
    """GET /products/{id}."""
    product = _load_product(product_id)
    latest = _load_drop(product.latest_drop_id) if product.latest_drop_id else None
    return product_view(product, latest)


_PRODUCTS_BY_STATUS_PAGE = {"product_id": "S", "status": "S", "created_at": "N"}
_PRODUCTS_PAGE = {"product_id": "S"}


def list_products(status: str | None, limit: int, page: str | None) -> dict[str, Any]:
    """Products, newest first when filtered by status (an index query), in key order otherwise."""
    if status is None:
        results = Product.scan(limit=limit, last_evaluated_key=decode_page(page, _PRODUCTS_PAGE))
    else:
        if status not in PRODUCT_STATUSES:
            raise InvalidRequestError(f"status must be one of {', '.join(PRODUCT_STATUSES)}")
        start = decode_page(page, _PRODUCTS_BY_STATUS_PAGE)
        results = Product.by_status.query(status, scan_index_forward=False, limit=limit, last_evaluated_key=start)
    products = list(results)
    latest = _drops_by_id([p.latest_drop_id for p in products if p.latest_drop_id])
    items = render_each(products, lambda p: product_view(p, latest.get(p.latest_drop_id or "")))
    return page_body(items, results.last_evaluated_key)


# --- drops ----------------------------------------------------------------------------------------
def create_drop(user_id: str, creator_id: str, new: NewDrop) -> dict[str, Any]:
    """A new drop of one of the creator's products, with its start and end scheduled."""
    owned_creator(creator_id, user_id)
    product = _load_product(new.product_id)
    if product.creator_id != creator_id:
        raise ForbiddenError("product_id belongs to another creator")
    start, end, stock = new.start_time, new.end_time, new.stock
    now = now_ms()
    if start >= end:
        raise InvalidRequestError("start_time must be before end_time")
    if end <= now:
        raise InvalidRequestError("end_time must be in the future")
    limit = new.per_user_limit
    if limit is not None and limit > stock:
        raise InvalidRequestError("per_user_limit must not exceed stock")
    low = new.low_stock_threshold
    if low is None:
        low = max(1, stock // 10)
    if low > stock:
        raise InvalidRequestError("low_stock_threshold must not exceed stock")
    mode = _sale_mode_settings(new, start, now)
    if mode["sale_mode"] == DRAW:
        if limit not in (None, 1):
            raise InvalidRequestError("a draw sells one unit to each winner: per_user_limit must be 1")
        limit = 1
    shard_count = shards.shard_count_for(stock, new.stock_shards)
    if shard_count > stock:
        raise InvalidRequestError("stock_shards must not exceed stock")
    drop = Drop(
        drop_id=new_id("dr"),
        product_id=product.product_id,
        creator_id=creator_id,
        start_time=start,
        end_time=end,
        initial_stock=stock,
        stock=stock,
        status=DropStatus.SCHEDULED,
        per_user_limit=limit,
        low_stock_at=low,
        price_cents=product.price_cents,
        currency=product.currency,
        created_at=now,
        stock_shards=shard_count if shard_count > 1 else None,
        **mode,
    )
    # Schedules first, then the drop: a drop is never stored without them, and if anything fails
    # the schedules go again (a schedule of a drop never stored does nothing).
    try:
        schedules.schedule_drop(drop.drop_id, start, end)
        _store_drop(drop, product)
    except Exception:
        schedules.unschedule_drop(drop.drop_id)
        raise
    product_cache.invalidate(product.product_id)
    return drop_view(drop)


def _store_drop(drop: Drop, product: Product) -> None:
    tx = Transaction()
    tx.put("drop", drop, Drop.drop_id.does_not_exist())
    _put_hot_drop_items(tx, drop, shard_count_of(drop))
    tx.update(
        "product",
        Product(product_id=product.product_id),
        [Product.latest_drop_id.set(drop.drop_id), Product.status.set(DropStatus.SCHEDULED)],
        Product.product_id.exists(),
    )
    try:
        tx.commit()
    except TransactionCancelledError as cancelled:
        if cancelled.failed("product"):
            raise ProductNotFoundError("no such product") from None
        raise


def _sale_mode_settings(new: NewDrop, start: int, now: int) -> dict[str, Any]:
    """The Drop attributes of the requested sale mode (validation allowed only SALE_MODES); settings
    of another mode are InvalidRequestError."""
    mode = new.sale_mode or FIRST_COME
    foreign = {FIRST_COME: (*_QUEUE_FIELDS, *_DRAW_FIELDS, "purchase_window_seconds"), QUEUE: _DRAW_FIELDS}
    foreign[DRAW] = _QUEUE_FIELDS
    for name in foreign[mode]:
        if getattr(new, name) is not None:
            raise InvalidRequestError(f"{name} does not apply to a {mode} drop")
    if mode == FIRST_COME:
        return {"sale_mode": None}
    window = _given(new.purchase_window_seconds, PURCHASE_WINDOW_SECONDS)
    if mode == QUEUE:
        opens_before = _given(new.queue_opens_before_seconds, QUEUE_OPENS_BEFORE_SECONDS)
        return {
            "sale_mode": QUEUE,
            "opens_at": start - opens_before * 1000,
            "admissions_per_second": _given(new.admissions_per_second, ADMISSIONS_PER_SECOND),
            "admission_seconds": window,
        }
    entries_open = _given(new.entries_open_time, now)
    if entries_open >= start:
        raise InvalidRequestError("entries_open_time must be before start_time (the draw)")
    if start <= now:
        raise InvalidRequestError("a draw's start_time (the draw) must be in the future")
    seed = secrets.token_hex(32)
    return {
        "sale_mode": DRAW,
        "opens_at": entries_open,
        "admission_seconds": window,
        "draw_seed": seed,
        "draw_commitment": draws.commitment_of(seed),
    }


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def _put_hot_drop_items(tx: Transaction, drop: Drop, shard_count: int) -> None:
    """A sharded drop's shards and a queue or draw drop's line, in the drop's own creation transaction."""
    if shard_count > 1:
        for index, item in enumerate(
            shards.new_shards(drop.drop_id, int(drop.stock), shard_count, int(drop.start_time), int(drop.end_time))
        ):
            tx.put(f"shard{index}", item)
    if drop.sale_mode in (QUEUE, DRAW):
        line = Line(
            drop_id=drop.drop_id,
            sale_mode=drop.sale_mode,
            start_time=drop.start_time,
            end_time=drop.end_time,
            active="active",
        )
        tx.put("line", line)


def _load_drop(drop_id: str) -> Drop:
    def load() -> Drop:
        try:
            return Drop.get(drop_id)
        except DoesNotExist:
            raise DropNotFoundError("no such drop") from None

    return _cached(drop_cache, drop_id, load)


def load_drop(drop_id: str) -> Drop:
    """The stored drop, from the in-process cache when warm (DropNotFoundError if there is none)."""
    return _load_drop(drop_id)


def released(drop_id: str) -> bool:
    """Whether a draw's last units sell first-come (it never goes back, so a cached `True` stays true)."""
    return load_drop(drop_id).released_at is not None


def get_drop(drop_id: str) -> dict[str, Any]:
    """GET /drops/{id}, from the in-process cache when warm."""
    return drop_view(_load_drop(drop_id))


def drop_terms(drop_id: str) -> DropTerms:
    """The immutable terms of a drop; no DynamoDB call once this Lambda has seen the drop."""

    def load() -> DropTerms:
        drop = _load_drop(drop_id)
        return DropTerms(
            drop_id=drop.drop_id,
            product_id=drop.product_id,
            creator_id=drop.creator_id,
            price_cents=int(drop.price_cents),
            currency=drop.currency,
            per_user_limit=None if drop.per_user_limit is None else int(drop.per_user_limit),
            start_time=int(drop.start_time),
            end_time=int(drop.end_time),
            initial_stock=int(drop.initial_stock),
            low_stock_at=None if drop.low_stock_at is None else int(drop.low_stock_at),
            sale_mode=sale_mode_of(drop),
            stock_shards=shard_count_of(drop),
            purchase_window_seconds=int(drop.admission_seconds or PURCHASE_WINDOW_SECONDS),
        )

    found = terms_cache.get(drop_id)
    if found is not None:
        count("CacheHit")
        return found
    count("CacheMiss")
    terms = load()
    # Until its start a creator may still change a drop (PATCH /drops/{id}): only a started drop's
    # terms are kept for the Lambda's life; before, they come from the drop's short-lived cache.
    return terms_cache.put(drop_id, terms) if terms.start_time <= now_ms() else terms


def _drops_by_id(drop_ids: list[str]) -> dict[str, Drop]:
    found: dict[str, Drop] = {}
    missing = []
    for drop_id in set(drop_ids):
        cached = drop_cache.get(drop_id)
        if cached is not None:
            found[drop_id] = cached
        else:
            missing.append(drop_id)
    for drop in Drop.batch_get(missing) if missing else []:
        found[drop.drop_id] = drop_cache.put(drop.drop_id, drop)
    return found


def _cached(cache: TtlCache[Any], key: str, load: Any) -> Any:
    found = cache.get(key)
    if found is not None:
        count("CacheHit")
        return found
    count("CacheMiss")
    return cache.put(key, load())


def owned_drop(user_id: str, drop_id: str, consistent_read: bool = False) -> Drop:
    """The caller's own drop; anyone else's is DropNotFoundError, as if it did not exist (a creator's
    sales, buyers and drop changes are private)."""
    try:
        drop = Drop.get(drop_id, consistent_read=consistent_read)
    except DoesNotExist:
        raise DropNotFoundError("no such drop") from None
    try:
        owned_creator(drop.creator_id, user_id)
    except (ForbiddenError, CreatorNotFoundError):
        raise DropNotFoundError("no such drop") from None
    return drop
