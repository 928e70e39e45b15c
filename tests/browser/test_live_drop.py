"""The web page in a real browser against the session's dev stack: a drop goes live, a follower buys,
another page watches the stock fall, all without a reload."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_config_json_tells_the_page_the_websocket_url(stack) -> None:
    response = requests.get(stack.web_url + "config.json", timeout=10)
    assert response.status_code == 200
    assert response.json()["ws_url"] == stack.ws_url


def test_drop_goes_live_follower_buys_and_another_page_watches_stock(pages, log_in, new_user) -> None:
    started = time.monotonic()
    creator, fan, viewer = new_user(name="Nova"), new_user(name="Sam"), new_user(name="Kim")
    creator_page, fan_page, viewer_page = pages.open("creator"), pages.open("fan"), pages.open("viewer")
    for page, user in ((creator_page, creator), (fan_page, fan), (viewer_page, viewer)):
        log_in(page, user)

    # The creator becomes a creator and adds a product, all through the studio.
    creator_page.get_by_test_id("nav-studio").click()
    creator_page.get_by_test_id("creator-name-input").fill("Nova Studio")
    creator_page.get_by_test_id("creator-profile-input").fill("Limited prints")
    creator_page.get_by_test_id("become-creator").click()
    creator_id = creator_page.get_by_test_id("studio-creator-id").inner_text()
    creator_page.get_by_test_id("product-name").fill("Signed print")
    creator_page.get_by_test_id("product-description").fill("A3, numbered")
    creator_page.get_by_test_id("product-price").fill("40")
    creator_page.get_by_test_id("product-submit").click()
    creator_page.wait_for_function(
        "document.querySelector('[data-testid=drop-product]').value !== ''", polling=100, timeout=10_000
    )

    # The fan follows the creator from the creator's page.
    fan_page.goto(fan_page.url.split("#")[0] + f"#/creator/{creator_id}")
    follow = fan_page.get_by_test_id("follow-button")
    follow.click()
    fan_page.wait_for_selector('[data-testid=follow-button][data-following="true"]')

    # The creator schedules a drop ~3 s ahead; the studio shows it counting down.
    start = creator_page.evaluate(_LOCAL_TIME_IN, 3500)
    creator_page.get_by_test_id("drop-start").fill(start)
    creator_page.get_by_test_id("drop-stock-input").fill("5")
    creator_page.get_by_test_id("drop-limit-input").fill("2")
    creator_page.get_by_test_id("drop-submit").click()
    card = creator_page.locator("[data-testid=studio-drops] [data-testid=drop-card]").first
    card.wait_for()
    drop_id = card.get_attribute("data-drop-id")
    assert "Starts in 00:00:0" in card.get_by_test_id("drop-when").inner_text()

    # A second page opens the drop before it starts: countdown, then live, with no reload.
    viewer_page.goto(viewer_page.url.split("#")[0] + f"#/drop/{drop_id}")
    viewer_page.wait_for_selector('[data-testid=drop-detail][data-subscribed="true"]')
    viewer_page.evaluate("window.__sameDocument = true")
    assert viewer_page.get_by_test_id("drop-stock-count").inner_text() == "5"

    # The follower hears drop_started and opens the drop from the toast.
    toast = fan_page.locator('[data-testid=toast][data-type="drop_started"]')
    toast.wait_for(timeout=20_000)
    assert "Signed print is live now" in toast.inner_text()
    toast.get_by_test_id("toast-link").click()
    fan_page.wait_for_selector('[data-testid=drop-detail][data-subscribed="true"]')
    fan_page.wait_for_selector('[data-testid=drop-detail] [data-testid=drop-status][data-status="live"]')
    viewer_page.wait_for_selector('[data-testid=drop-detail] [data-testid=drop-status][data-status="live"]')

    # The follower buys one with tok_visa: pending, then confirmed; a toast says so.
    keys = _record_order_keys(fan_page)
    fan_page.get_by_test_id("card-tok_visa").check()
    fan_page.get_by_test_id("buy-button").click()
    order = fan_page.locator("[data-testid=drop-orders] [data-testid=order]").first
    order.wait_for()
    fan_page.wait_for_selector(
        '[data-testid=drop-orders] [data-testid=order-status][data-status="confirmed"]', timeout=20_000
    )
    fan_page.locator('[data-testid=toast][data-type="order_confirmed"]').wait_for(timeout=45_000)

    # The other page saw the stock fall in real time, in the same document.
    viewer_page.wait_for_function(
        "document.querySelector('[data-testid=drop-stock-count]').textContent === '4'", polling=100, timeout=10_000
    )
    assert viewer_page.evaluate("window.__sameDocument") is True

    # Over the per-person limit: the API's code becomes a clear message.
    fan_page.get_by_test_id("buy-quantity").select_option("2")
    fan_page.get_by_test_id("buy-button").click()
    error = fan_page.get_by_test_id("buy-error")
    fan_page.wait_for_selector('[data-testid=buy-error][data-code="purchase_limit_exceeded"]')
    assert "per-person limit" in error.inner_text()
    assert len(keys) == 2 and keys[0] != keys[1], keys  # one fresh Idempotency-Key per purchase click

    assert pages.errors == [], pages.errors
    print(f"\nbrowser flow took {time.monotonic() - started:.1f} s")


def test_expired_token_refreshes_declined_card_fails_and_inbox_lists_it_at_phone_width(pages, api, new_user) -> None:
    creator, fan = new_user(name="Ann", creator=True), new_user(name="Lee")
    creator_id = api.get("/me", creator.token).json()["creator_id"]
    product = api.post(
        f"/creators/{creator_id}/products",
        creator.token,
        json={"name": "Glow hoodie", "description": "300 made", "price_cents": 6500, "currency": "USD"},
    ).json()
    drop = api.post(
        f"/creators/{creator_id}/drops",
        creator.token,
        json={
            "product_id": product["product_id"],
            "start_time": _iso(-5),
            "end_time": _iso(3600),
            "stock": 3,
            "per_user_limit": 1,
        },
    ).json()
    assert api.post(f"/creators/{creator_id}/follow", fan.token).status_code == 200

    # A tab whose id token went bad: the first call says 401, the page refreshes and carries on.
    page = pages.open("phone", width=390, height=844)
    session = {"id_token": "expired.token.value", "access_token": "", "refresh_token": fan.refresh_token, "user": None}
    page.evaluate("s => sessionStorage.setItem('livedrop.session', JSON.stringify(s))", session)
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    page.reload()
    page.wait_for_selector('[data-testid="ws-status"][data-state="open"]')
    assert page.get_by_test_id("current-user").inner_text() == "Lee"
    page.wait_for_selector('[data-testid=drop-detail][data-subscribed="true"]')
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # A declined card: pending, then payment_failed; the stock comes back. The first POST is lost on
    # the way, and the page's automatic retry of that same click reuses its Idempotency-Key.
    keys = _record_order_keys(page)
    dropped: list[str] = []

    def drop_first(route) -> None:
        if route.request.method == "POST" and not dropped:
            dropped.append(route.request.headers["idempotency-key"])
            route.abort()
        else:
            route.continue_()

    page.route("**/orders", drop_first)
    page.get_by_test_id("card-tok_chargeDeclined").check()
    page.get_by_test_id("buy-button").click()
    page.wait_for_selector(
        '[data-testid=drop-orders] [data-testid=order-status][data-status="payment_failed"]', timeout=20_000
    )
    # The frame may queue behind the notifications of earlier tests in the same session.
    page.locator('[data-testid=toast][data-type="order_failed"]').wait_for(timeout=45_000)
    assert len(keys) == 2 and keys[0] == keys[1] == dropped[0], keys
    assert page.locator("[data-testid=drop-orders] [data-testid=order]").count() == 1
    page.wait_for_function(
        "document.querySelector('[data-testid=drop-stock-count]').textContent === '3'", polling=100, timeout=10_000
    )

    # The inbox lists the failed order.
    page.get_by_test_id("nav-inbox").click()
    page.locator('[data-testid=inbox-item][data-type="order_failed"]').wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    unexpected = [e for e in pages.errors if "net::ERR_FAILED" not in e]  # the POST we dropped on purpose
    assert unexpected == [], unexpected


def _record_order_keys(page) -> list[str]:
    """The Idempotency-Key of every POST /orders the page sends, in order."""
    keys: list[str] = []
    page.on(
        "request",
        lambda request: (
            request.method == "POST"
            and request.url.endswith("/orders")
            and keys.append(request.headers.get("idempotency-key"))
        ),
    )
    return keys


def _iso(delta_seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=delta_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# A datetime-local value `ms` from now, in the browser's own time zone.
_LOCAL_TIME_IN = """ms => {
  const d = new Date(Date.now() + ms);
  const p = (n) => String(n).padStart(2, "0");
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${date}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}"""
