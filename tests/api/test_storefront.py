"""Creator search, a drop's buyers for fulfilment (JSON and CSV) and product images (docs/api.md)."""

from __future__ import annotations

import csv
import io
import uuid

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.fulfilment import safe_cell
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import Creator
from tests.api import test_orders
from tests.api.test_orders import error_code
from tests.support import wait_for

shop = test_orders.shop
make_drop = test_orders.make_drop


# --- creator search ---------------------------------------------------------------------------
def search_all(api, text: str, limit: int = 100) -> list[dict]:
    """Every creator a search finds, page after page (a page may be short while more remain)."""
    found, page = [], None
    for _ in range(200):
        params = {"query": text, "limit": str(limit)} | ({"page": page} if page else {})
        response = api.session.get(api.base_url + "/creators", params=params, timeout=30)
        assert response.status_code == 200, response.text
        found += response.json()["items"]
        page = response.json()["next_page"]
        if not page:
            return found
    raise AssertionError("the search did not end")


def test_creators_are_found_by_the_start_of_their_name_or_of_a_word_any_case(api, new_user) -> None:
    tag = uuid.uuid4().hex[:10]
    names = [f"Quokka{tag} Prints", f"Studio quokka{tag}", f"Prints{tag}"]
    ids = []
    for name in names:
        user = new_user()
        made = api.post("/creators", user.token, json={"name": name})
        assert made.status_code == 201
        ids.append(made.json()["creator_id"])
    found = {c["creator_id"]: c for c in search_all(api, f"QUOKKA{tag}")}
    assert set(found) == set(ids[:2])
    assert found[ids[0]]["name"] == names[0] and set(found[ids[0]]) == {
        "creator_id",
        "name",
        "profile",
        "follower_count",
    }
    # Not the middle of a word; the whole name with its spaces; a page of one at a time.
    assert search_all(api, f"uokka{tag}") == []
    assert [c["creator_id"] for c in search_all(api, f"studio  quokka{tag}")] == [ids[1]]
    assert {c["creator_id"] for c in search_all(api, f"quokka{tag}", limit=1)} == set(ids[:2])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(alphabet="ab \x00\x1f\x7fé%", max_size=4),
        st.integers(95, 105).map(lambda n: "q" * n),
        st.just(""),
        st.just("   "),
    )
)
def test_a_search_query_is_bounded_and_refused_with_400_otherwise(api, text) -> None:
    response = api.session.get(api.base_url + "/creators", params={"query": text, "limit": "5"}, timeout=30)
    bad = not text.strip() or len(text) > 100 or any(c in text for c in "\x00\x1f\x7f")
    assert response.status_code == (400 if bad else 200), (text, response.text)
    if bad:
        assert error_code(response) == "invalid_request"


def test_a_creator_stored_before_search_existed_is_found_by_its_name(api, new_user) -> None:
    tag = uuid.uuid4().hex[:10]
    owner = new_user()
    # Written straight into the table as a creator made before search was: no search_name.
    old = Creator(
        creator_id=f"cr_{uuid.uuid4().hex}",
        owner_user_id=owner.user_id,
        name=f"Old  Wombat{tag} Works",
        follower_count=0,
        created_at=now_ms(),
    )
    old.save()
    try:
        assert Creator.get(old.creator_id).search_name is None
        for text in (f"wombat{tag}", f"OLD WOMBAT{tag}", "old  wombat" + tag):
            assert [c["creator_id"] for c in search_all(api, text)] == [old.creator_id], text
        assert search_all(api, f"ombat{tag}") == []  # the middle of a word, as for any creator
    finally:
        old.delete()


def test_a_search_without_a_query_or_with_a_bad_page_is_400(api) -> None:
    assert error_code(api.get("/creators")) == "invalid_request"
    assert api.get("/creators?query=a&page=nope").status_code == 400
    assert api.get("/creators?query=a&limit=0").status_code == 400


# --- buyers ----------------------------------------------------------------------------------
def test_the_owner_lists_confirmed_buyers_with_addresses_as_json_and_csv(api, new_user, shop, make_drop) -> None:
    owner = shop[0]
    drop = make_drop(stock=20)
    hostile = {"name": "=HYPERLINK(\"http://x\")", "line1": '1 "Quoted", Street', "city": "+Town",
               "postal_code": "-1", "country": "US", "region": "@home"}  # fmt: skip
    plain = {"name": "Bo", "line1": "2 Road", "city": "Oslo", "postal_code": "0150", "country": "NO"}
    buyers = [new_user(), new_user(), new_user()]
    placed = []
    for buyer, address, token in zip(
        buyers, (hostile, plain, None), ("tok_visa", "tok_visa", "tok_chargeDeclined"), strict=True
    ):
        body = {"drop_id": drop["drop_id"], "quantity": 2, "payment_token": token}
        if address:
            body["shipping_address"] = address
        response = api.post("/orders", buyer.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        placed.append(response.json()["order_id"])
    unaddressed = test_orders.order(api, buyers[2], drop["drop_id"]).json()["order_id"]
    wanted = {placed[0], placed[1], unaddressed}
    path = f"/drops/{drop['drop_id']}/buyers"

    def listed() -> list[dict]:
        return api.get(path, owner.token).json()["items"]

    wait_for(lambda: {item["order_id"] for item in listed()} == wanted)
    items = {item["order_id"]: item for item in listed()}
    assert items[placed[0]]["shipping_address"] == hostile and items[placed[0]]["quantity"] == 2
    assert items[placed[0]]["user_id"] == buyers[0].user_id and items[unaddressed]["shipping_address"] is None
    # Pages of one, then the same as CSV.
    first = api.get(path + "?limit=1", owner.token).json()
    second = api.get(f"{path}?limit=1&page={first['next_page']}", owner.token).json()
    assert len(first["items"]) == len(second["items"]) == 1 and first["items"] != second["items"]
    answer = api.get(path, owner.token, headers={"Accept": "text/csv"})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    by_id = {row["order_id"]: row for row in rows}
    assert set(by_id) == wanted
    row = by_id[placed[0]]
    assert row["name"] == '\'=HYPERLINK("http://x")' and row["line1"] == '1 "Quoted", Street'
    assert (row["city"], row["postal_code"], row["region"], row["country"]) == ("'+Town", "'-1", "'@home", "US")
    assert by_id[placed[1]]["name"] == "Bo" and by_id[unaddressed]["line1"] == ""


def test_buyers_are_the_owners_alone(api, new_user, make_drop) -> None:
    drop, other = make_drop(stock=2), new_user(creator=True)
    for headers in (None, {"Accept": "text/csv"}):
        refused = api.get(f"/drops/{drop['drop_id']}/buyers", other.token, headers=headers)
        assert refused.status_code == 404 and error_code(refused) == "drop_not_found"
    assert api.get(f"/drops/{drop['drop_id']}/buyers").status_code == 401


def test_a_cell_that_a_spreadsheet_would_run_is_made_text() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("Bo") == "Bo" and safe_cell(None) == "" and safe_cell(3) == "3"


# --- product images ----------------------------------------------------------------------------
def test_an_owner_uploads_an_image_which_the_product_lists_and_the_url_serves(api, new_user, shop) -> None:
    owner, _, product = shop
    path = f"/products/{product['product_id']}/images"
    granted = api.post(path, owner.token, json={"content_type": "image/png"})
    assert granted.status_code == 201, granted.text
    upload = granted.json()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    sent = requests.post(upload["upload_url"], data=upload["fields"], files={"file": ("a.png", png)}, timeout=30)
    assert sent.status_code in (200, 204), sent.text
    served = requests.get(upload["image_url"], timeout=30)
    assert served.status_code == 200 and served.content == png, (served.status_code, served.text[:500], sent.text[:300])
    wait_for(lambda: api.get(f"/products/{product['product_id']}").json()["images"] == [upload["image_url"]])
    # Another type, a stranger, someone else's product.
    for body in (
        {"content_type": "image/gif"},
        {"content_type": "text/html"},
        {},
        {"content_type": "image/png", "x": 1},
    ):
        refused = api.post(path, owner.token, json=body)
        assert refused.status_code == 400 and error_code(refused) == "invalid_request", body
    assert api.post(path, new_user().token, json={"content_type": "image/png"}).status_code == 403
    assert api.post("/products/pr_nope/images", owner.token, json={"content_type": "image/png"}).status_code == 404


def test_an_upload_over_the_size_cap_is_refused(api, shop) -> None:
    owner, _, product = shop
    upload = api.post(f"/products/{product['product_id']}/images", owner.token, json={"content_type": "image/jpeg"})
    grant = upload.json()
    assert grant["max_bytes"] == 5 * 1024 * 1024
    too_big = b"\xff" * (grant["max_bytes"] + 1)
    sent = requests.post(grant["upload_url"], data=grant["fields"], files={"file": ("a.jpg", too_big)}, timeout=60)
    assert sent.status_code == 400, sent.text
    assert requests.get(grant["image_url"], timeout=30).status_code == 404
