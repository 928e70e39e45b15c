"""Every table exists on the embedded AWS exactly as the models describe it."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.schema import models
from devstack.identity import client_kwargs


@pytest.fixture(scope="module")
def dynamodb(aws_endpoint: str):
    return boto3.client("dynamodb", **client_kwargs(aws_endpoint))


def _keys(schema: list[dict]) -> list[tuple[str, str]]:
    return sorted((k["AttributeName"], k["KeyType"]) for k in schema)


@pytest.mark.parametrize("model", models.ALL_MODELS, ids=lambda m: m.__name__)
def test_table_matches_its_model(dynamodb, model) -> None:
    table = dynamodb.describe_table(TableName=model.Meta.table_name)["Table"]
    assert _keys(table["KeySchema"]) == _keys(
        [
            {"AttributeName": a.attr_name, "KeyType": "HASH" if a.is_hash_key else "RANGE"}
            for a in model.get_attributes().values()
            if a.is_hash_key or a.is_range_key
        ]
    )
    expected_indexes = {
        i.Meta.index_name: (
            _keys(
                [
                    {"AttributeName": a.attr_name, "KeyType": "HASH" if a.is_hash_key else "RANGE"}
                    for a in i.Meta.attributes.values()
                    if a.is_hash_key or a.is_range_key
                ]
            ),
            i.Meta.projection.projection_type,
        )
        for i in model._indexes.values()
    }
    actual_indexes = {
        g["IndexName"]: (_keys(g["KeySchema"]), g["Projection"]["ProjectionType"])
        for g in table.get("GlobalSecondaryIndexes", [])
    }
    assert actual_indexes == expected_indexes
    stream = table.get("StreamSpecification") or {}
    if model in models.STREAM_MODELS:
        assert stream == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert table.get("LatestStreamArn")
    else:
        assert not stream.get("StreamEnabled")
    ttl = dynamodb.describe_time_to_live(TableName=model.Meta.table_name)["TimeToLiveDescription"]
    ttl_attr = model._ttl_attribute()
    if ttl_attr is None:
        assert ttl.get("TimeToLiveStatus") in (None, "DISABLED")
    else:
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == ttl_attr.attr_name
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
