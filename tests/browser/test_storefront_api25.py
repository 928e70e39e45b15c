"""The page's side of the API routes of issue 25 (creator search, order cancel, drop reschedule and
cancel, product images, buyers, shipping address). Each test skips while the dev stack lacks its route,
and the first one checks that, meanwhile, the page says so in words."""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.support import iso, open_shop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _missing(response) -> bool:
    """Whether the gateway answered that the route itself does not exist (API Gateway's 403, or 404/405)."""
    if response.status_code == 405:
        return True
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return response.status_code == 404
    return code == "route_not_found" or (response.status_code == 404 and code == "not_found")


def _need(response, what: str) -> None:
    if _missing(response):
        pytest.skip(f"this dev stack has no {what} yet")


def _live_drop(api, owner, name: str, **extra) -> tuple[str, dict, dict]:
    creator_id, product = open_shop(api, owner, name, 2200)
    body = {"product_id": product["product_id"], "start_time": iso(-5), "end_time": iso(3600), "stock": 5} | extra
    response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body)
    assert response.status_code == 201, response.text
    return creator_id, product, response.json()


def test_while_the_routes_are_missing_the_page_says_so_in_words(pages, log_in, api, new_user) -> None:
    owner = new_user(name="Older", creator=True)
    _, _, drop = _live_drop(api, owner, "Older print")
    if not _missing(api.get(f"/drops/{drop['drop_id']}/buyers", owner.token)):
        pytest.skip("the buyers route exists: the tests below cover it")
    page = pages.open("older")
    log_in(page, owner)
    page.goto(pages.base_url + "#/studio")
    card = page.locator(f"[data-testid=drop-card][data-drop-id='{drop['drop_id']}']")
    card.get_by_test_id("drop-buyers").click()
    error = card.get_by_test_id("manage-error")
    error.wait_for()
    assert error.inner_text() == "This server doesn't offer that yet."
    if _missing(api.get("/creators?query=x")):
        page.goto(pages.base_url + "#/following")
        page.get_by_test_id("creator-search-input").fill("anyone")
        page.get_by_test_id("creator-search-submit").click()
        page.locator("[data-testid=creator-search] .error").wait_for()
        assert "isn't offered by this server yet" in page.locator("[data-testid=creator-search] .error").inner_text()
    assert pages.errors == [], pages.errors


def test_a_fan_finds_a_creator_by_name(pages, log_in, api, new_user) -> None:
    name = f"Zed {uuid.uuid4().hex[:8]}"
    owner = new_user(name=name)
    made = api.post("/creators", owner.token, json={"name": name, "profile": "prints"})
    assert made.status_code == 201, made.text
    _need(api.get(f"/creators?query={name}"), "creator search")
    page = pages.open("search")
    log_in(page, new_user(name="Seeker"))
    page.goto(pages.base_url + "#/following")
    page.get_by_test_id("creator-search-input").fill(name)
    page.get_by_test_id("creator-search-submit").click()
    result = page.locator(f"[data-testid=creator-result][data-creator-id='{made.json()['creator_id']}']")
    result.wait_for()
    result.locator("a").click()
    page.get_by_test_id("creator-name").wait_for()
    assert page.get_by_test_id("creator-name").inner_text() == name
    assert pages.errors == [], pages.errors


def test_a_buyer_cancels_an_unpaid_order_and_the_stock_comes_back(pages, log_in, api, new_user) -> None:
    owner, fan = new_user(name="Canceller", creator=True), new_user(name="Una")
    _, _, drop = _live_drop(api, owner, "Cancel mug")
    _need(api.post("/orders/or_nothing/cancel", fan.token), "order cancel")
    page = pages.open("cancel")
    log_in(page, fan)
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    page.get_by_test_id("card-tok_threeDSecureRequired").wait_for()
    page.locator("[data-testid=card-tok_threeDSecureRequired]").check()
    page.get_by_test_id("buy-button").click()
    page.get_by_test_id("order-cancel").click()
    page.get_by_test_id("order-cancelled").wait_for()
    page.wait_for_function("document.querySelector('[data-testid=drop-stock-count]').textContent === '5'")
    assert pages.errors == [], pages.errors


def test_a_creator_reschedules_then_cancels_a_drop(pages, log_in, api, new_user) -> None:
    owner = new_user(name="Mover", creator=True)
    creator_id, product = open_shop(api, owner, "Moved print", 1000)
    body = {"product_id": product["product_id"], "start_time": iso(600), "end_time": iso(3600), "stock": 5}
    drop = api.post(f"/creators/{creator_id}/drops", owner.token, json=body).json()
    _need(api.call("PATCH", f"/drops/{drop['drop_id']}", owner.token, json={}), "drop PATCH")
    page = pages.open("mover")
    log_in(page, owner)
    page.goto(pages.base_url + "#/studio")
    card = page.locator(f"[data-testid=drop-card][data-drop-id='{drop['drop_id']}']")
    card.get_by_test_id("drop-reschedule").click()
    card.get_by_test_id("drop-stock-input").fill("9")
    card.get_by_test_id("reschedule-submit").click()
    page.wait_for_function("!document.querySelector('[data-testid=reschedule-form]')")
    assert api.get(f"/drops/{drop['drop_id']}").json()["initial_stock"] == 9
    card.get_by_test_id("drop-cancel").click()
    card.get_by_test_id("drop-cancel").click()  # the second click confirms
    page.wait_for_selector(f"[data-testid=drop-card][data-drop-id='{drop['drop_id']}'][data-cancelled=true]")
    assert api.get(f"/drops/{drop['drop_id']}").json()["status"] == "cancelled"
    assert pages.errors == [], pages.errors


def test_a_creator_adds_a_product_image_and_buyers_ship_to_their_address(
    pages, log_in, api, new_user, tmp_path
) -> None:
    owner, fan = new_user(name="Shipper", creator=True), new_user(name="Wes")
    _, product, drop = _live_drop(api, owner, "Shipped poster")
    _need(api.post(f"/products/{product['product_id']}/images", owner.token, json={}), "product images")
    page = pages.open("images")
    log_in(page, owner)
    page.goto(pages.base_url + "#/studio")
    image = tmp_path / "poster.png"
    image.write_bytes(PNG)
    row = page.locator(f"[data-testid=studio-product][data-product-id='{product['product_id']}']")
    row.get_by_test_id("product-image-input").set_input_files(str(image))
    row.locator("[data-testid=product-images] img").wait_for()
    assert api.get(f"/products/{product['product_id']}").json()["images"]

    buyer = pages.open("shipping")
    log_in(buyer, fan)
    buyer.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    buyer.get_by_test_id("drop-images").wait_for()
    buyer.locator("[data-testid=ship-to] summary").click()
    for field, value in (("name", "Wes Doe"), ("line1", "1 Main St"), ("city", "Lyon"), ("postal_code", "69001")):
        buyer.get_by_test_id(f"ship-{field}").fill(value)
    buyer.get_by_test_id("ship-country").fill("fr")
    buyer.get_by_test_id("buy-button").click()
    buyer.wait_for_selector(
        '[data-testid=drop-orders] [data-testid=order-status][data-status="confirmed"]', timeout=30_000
    )

    page.goto(pages.base_url + "#/studio")
    card = page.locator(f"[data-testid=drop-card][data-drop-id='{drop['drop_id']}']")
    card.get_by_test_id("drop-buyers").click()
    card.get_by_test_id("buyer-row").first.wait_for()
    assert "Lyon" in card.get_by_test_id("buyers-table").inner_text()
    assert pages.errors == [], pages.errors
