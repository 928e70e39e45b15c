"""Reads render every stored item defensively: an item no accepted write could store (written here
straight into the table, as an older version or a manual fix might have) never takes a listing down."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Drop
from tests.support import open_shop


@pytest.fixture()
def unrenderable_drop(api, new_user):
    owner = new_user(creator=True)
    creator_id, product = open_shop(api, owner, "Corrupt tee", 100)
    now = now_ms()
    drop = Drop(
        drop_id=f"dr_{uuid.uuid4().hex}",
        product_id=product["product_id"],
        creator_id=creator_id,
        start_time=-(10**17),  # before year 1: no ISO-8601 time can show it
        end_time=now + 3_600_000,
        initial_stock=5,
        stock=5,
        status="live",
        price_cents=100,
        currency="USD",
        created_at=now,
    )
    drop.save()
    yield drop.drop_id
    drop.delete()


@pytest.mark.corrupt_data
def test_a_stored_item_no_time_can_show_never_breaks_the_listings(api, unrenderable_drop) -> None:
    for path in ("/drops", "/drops?status=live", "/drops?status=scheduled", "/drops?status=ended", "/products"):
        response = api.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    shown = api.get(f"/drops/{unrenderable_drop}")
    assert shown.status_code == 200
    assert shown.json()["start_time"] is None and shown.json()["status"] == "live"
