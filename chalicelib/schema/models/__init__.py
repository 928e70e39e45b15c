"""The one schema: PynamoDB models that infra/, the dev stack and the tests all read, one module per
concept (people, catalog, orders, messaging, hot), their shared binding in `base`.

Storage conventions: every timestamp is integer epoch milliseconds (the API shows ISO-8601 Z);
TTL attributes are epoch seconds, as DynamoDB requires; money is integer cents plus a currency.
"""

from __future__ import annotations

from typing import Any

from pynamodb.models import Model

from chalicelib.schema.models.base import NEW_AND_OLD_IMAGES, bind, slot_counters
from chalicelib.schema.models.catalog import (
    DROP_HOT_ATTRIBUTES,
    DROP_INDEXED_ATTRIBUTES,
    Drop,
    DropSales,
    DropsByCreator,
    DropsByStatus,
    Product,
    ProductsByCreator,
    ProductsByStatus,
    sold_by_slot,
    sold_in_slot,
)
from chalicelib.schema.models.hot import (
    ADMITTED_PREFIX,
    JOINS_PREFIX,
    Admission,
    Line,
    RateLimit,
    SigningKey,
    StockShard,
    admitted_by_slot,
    joined_in_slot,
    line_slot,
    line_span,
)
from chalicelib.schema.models.messaging import (
    Connection,
    Notification,
    NotificationPreference,
    ProcessedEvent,
    Subscription,
    WebPushSubscription,
)
from chalicelib.schema.models.orders import IdempotencyKey, Order, Purchase
from chalicelib.schema.models.people import Creator, Follow, User

__all__ = [
    "ADMITTED_PREFIX",
    "JOINS_PREFIX",
    "ALL_MODELS",
    "DROP_HOT_ATTRIBUTES",
    "DROP_INDEXED_ATTRIBUTES",
    "NEW_AND_OLD_IMAGES",
    "STREAM_MODELS",
    "Admission",
    "Connection",
    "Creator",
    "Drop",
    "DropSales",
    "DropsByCreator",
    "DropsByStatus",
    "Follow",
    "IdempotencyKey",
    "Line",
    "Notification",
    "NotificationPreference",
    "Order",
    "ProcessedEvent",
    "Product",
    "ProductsByCreator",
    "ProductsByStatus",
    "Purchase",
    "RateLimit",
    "SigningKey",
    "StockShard",
    "Subscription",
    "User",
    "WebPushSubscription",
    "bind",
    "admitted_by_slot",
    "create_all_tables",
    "joined_in_slot",
    "line_slot",
    "line_span",
    "sold_by_slot",
    "slot_counters",
    "sold_in_slot",
    "table_spec",
]

ALL_MODELS: tuple[type[Model], ...] = (
    User,
    Creator,
    Follow,
    Product,
    Drop,
    DropSales,
    Order,
    IdempotencyKey,
    Purchase,
    Notification,
    Connection,
    Subscription,
    ProcessedEvent,
    StockShard,
    Line,
    Admission,
    RateLimit,
    SigningKey,
    NotificationPreference,
    WebPushSubscription,
)
# Tables whose changes are domain events (DynamoDB Streams are the outbox).
STREAM_MODELS: tuple[type[Model], ...] = (Drop, Order, StockShard)


def table_spec(model: type[Model]) -> dict[str, Any]:
    """A model's table as CreateTable arguments plus its TTL attribute (None if it has none)."""
    attr_types: dict[str, str] = {}

    def key_schema(attrs: dict[str, Any]) -> list[dict[str, str]]:
        keys = []
        for attr in attrs.values():
            if attr.is_hash_key or attr.is_range_key:
                attr_types[attr.attr_name] = attr.attr_type
                keys.append({"AttributeName": attr.attr_name, "KeyType": "HASH" if attr.is_hash_key else "RANGE"})
        return sorted(keys, key=lambda k: k["KeyType"] != "HASH")

    spec: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        "KeySchema": key_schema(model.get_attributes()),
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = []
    for index in sorted(model._indexes.values(), key=lambda i: i.Meta.index_name):
        projection: dict[str, Any] = {"ProjectionType": index.Meta.projection.projection_type}
        if index.Meta.projection.non_key_attributes:
            projection["NonKeyAttributes"] = list(index.Meta.projection.non_key_attributes)
        indexes.append(
            {
                "IndexName": index.Meta.index_name,
                "KeySchema": key_schema(index.Meta.attributes),
                "Projection": projection,
            }
        )
    if indexes:
        spec["GlobalSecondaryIndexes"] = indexes
    spec["AttributeDefinitions"] = [{"AttributeName": n, "AttributeType": t} for n, t in sorted(attr_types.items())]
    stream_view = getattr(model.Meta, "stream_view_type", None)
    if stream_view:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
    ttl = model._ttl_attribute()
    return {"create": spec, "ttl_attribute": ttl.attr_name if ttl else None}


def create_all_tables(dynamodb_client: Any) -> list[str]:
    """Create every table of ALL_MODELS through `dynamodb_client` (skipping existing ones)."""
    existing = set(dynamodb_client.list_tables().get("TableNames", []))
    created = []
    for model in ALL_MODELS:
        spec = table_spec(model)
        name = spec["create"]["TableName"]
        if name not in existing:
            dynamodb_client.create_table(**spec["create"])
            created.append(name)
        if spec["ttl_attribute"]:
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["ttl_attribute"]},
            )
    return created
