"""The storefront in a real browser: the studio's sale modes and sales chart, errors in words, state
cleared on logout, live stock for logged-out visitors, product names on orders, a creator told of their
own drop, toasts clear of the countdown and inbox rows apart."""

from __future__ import annotations

import uuid

import pytest

from tests.support import iso, open_shop, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _drop(api, owner, shop, start: float = -5, **extra) -> dict:
    creator_id, product = shop
    body = {"product_id": product["product_id"], "start_time": iso(start), "end_time": iso(3600)} | extra
    response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _buy(api, user, drop_id: str, quantity: int = 1, card: str = "tok_visa") -> dict:
    body = {"drop_id": drop_id, "quantity": quantity, "payment_token": card}
    response = api.post("/orders", user.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def _attr_is(page, selector: str, name: str, value: str, timeout: int = 45_000) -> None:
    page.wait_for_function(
        "([s, n, v]) => document.querySelector(s)?.getAttribute(n) === v",
        arg=[selector, name, value],
        polling=100,
        timeout=timeout,
    )


def test_the_studio_schedules_queue_and_draw_drops_and_says_errors_in_words(
    pages, log_in, api, new_user, shoot
) -> None:
    owner = new_user(name="Moss", creator=True)
    creator_id, product = open_shop(api, owner, "Moss tote", 2500)
    page = pages.open("studio")
    log_in(page, owner)
    page.goto(pages.base_url + "#/studio")
    page.locator(f"[data-testid=studio-product][data-product-id='{product['product_id']}']").wait_for()
    page.get_by_test_id("drop-product").select_option(product["product_id"])

    # An end before the start: the API's field names become a sentence.
    start = page.get_by_test_id("drop-start").input_value()
    page.get_by_test_id("drop-end").fill(start.replace(start[:4], str(int(start[:4]) - 1)))
    page.get_by_test_id("drop-submit").click()
    error = page.locator("[data-testid=drop-form] .error")
    error.wait_for()
    assert error.inner_text() == "The start time must be before the end time.", error.inner_text()

    # A waiting room with its settings.
    page.get_by_test_id("drop-end").fill(start.replace(start[:4], str(int(start[:4]) + 1)))
    assert page.get_by_test_id("queue-settings").is_hidden()
    page.get_by_test_id("drop-sale-mode").select_option("queue")
    page.get_by_test_id("queue-opens-input").fill("30")
    page.get_by_test_id("queue-rate-input").fill("7")
    page.get_by_test_id("queue-window-input").fill("2")
    assert page.get_by_test_id("draw-settings").is_hidden()
    shoot(page, "studio")
    page.get_by_test_id("drop-submit").click()
    card = page.locator("[data-testid=studio-drops] [data-testid=drop-card]").first
    card.wait_for()
    drop = api.get(f"/drops/{card.get_attribute('data-drop-id')}").json()
    assert drop["sale_mode"] == "queue"
    assert drop["queue"]["admissions_per_second"] == 7 and drop["queue"]["purchase_window_seconds"] == 120

    # A draw: its own settings; its limit is one per winner.
    page.get_by_test_id("drop-sale-mode").select_option("draw")
    assert page.get_by_test_id("queue-settings").is_hidden()
    page.get_by_test_id("draw-window-input").fill("3")
    page.get_by_test_id("drop-submit").click()
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=studio-drops] [data-testid=drop-card]').length === 2"
    )
    drawn = api.get(f"/drops/{card.get_attribute('data-drop-id')}").json()
    assert drawn["sale_mode"] == "draw" and drawn["per_user_limit"] == 1
    assert drawn["draw"]["purchase_window_seconds"] == 180 and len(drawn["draw"]["commitment"]) == 64
    assert pages.errors == [], pages.errors


def test_the_sales_view_charts_units_sold_and_stock_over_time(pages, log_in, api, new_user, shoot) -> None:
    owner, fan = new_user(name="Chart maker", creator=True), new_user(name="Buyer")
    shop = open_shop(api, owner, "Chart print", 1500)
    drop = _drop(api, owner, shop, stock=6)
    _buy(api, fan, drop["drop_id"], 2)
    page = pages.open("sales")
    log_in(page, owner)
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    page.get_by_test_id("sales-chart").wait_for()
    _attr_is(page, "[data-series=stock]", "data-last", "4")
    _attr_is(page, "[data-series=sold]", "data-last", "2")  # once the card is charged
    # More sales move the lines without a reload; the chart starts at the drop's start with the full stock.
    _buy(api, fan, drop["drop_id"], 1)
    _attr_is(page, "[data-series=stock]", "data-last", "3")
    _attr_is(page, "[data-series=sold]", "data-last", "3")
    # The lines come from the API's series: from the full stock at the start, in one-minute steps.
    points = page.locator("[data-series=stock]").get_attribute("points").split()
    assert len(points) >= 4
    assert float(points[0].split(",")[1]) < float(points[-1].split(",")[1])  # higher on screen: 6 then 3
    assert "From the drop's start, in 1-minute steps" in page.get_by_test_id("sales-chart-note").inner_text()
    assert page.get_by_test_id("sales-line").is_hidden()  # a first-come drop has no line
    shoot(page, "sales")

    # A queue drop: its joins and admissions, as figures and as a chart of what the page saw.
    queue = _drop(api, owner, shop, start=600, stock=6, sale_mode="queue")
    for joiner in (fan, new_user(name="Second fan")):
        assert api.post(f"/drops/{queue['drop_id']}/queue", joiner.token).status_code == 201
    page.goto(pages.base_url + f"#/drop/{queue['drop_id']}")
    page.get_by_test_id("line-chart").wait_for()
    _attr_is(page, "[data-series=joins]", "data-last", "2")
    _attr_is(page, "[data-series=admissions]", "data-last", "0")
    assert page.get_by_test_id("sales-line-joins").inner_text() == "2"
    assert page.get_by_test_id("sales-line-admissions").inner_text() == "0"
    assert page.get_by_test_id("sales-chart-note").inner_text() == "The chart starts when the drop does."
    assert pages.errors == [], pages.errors


def test_logging_out_clears_the_last_creators_studio_and_orders(pages, log_in, api, new_user) -> None:
    first, second = new_user(name="First", creator=True), new_user(name="Second", creator=True)
    _, theirs = open_shop(api, first, "First's secret", 1000)
    _, mine = open_shop(api, second, "Second's own", 1000)
    page = pages.open("shared-tab")
    log_in(page, first)
    page.goto(pages.base_url + "#/studio")
    page.locator(f"[data-testid=drop-product] option[value='{theirs['product_id']}']").wait_for(state="attached")
    page.get_by_test_id("logout").click()
    page.get_by_test_id("auth-email").wait_for()
    log_in(page, second)
    page.goto(pages.base_url + "#/studio")
    page.locator(f"[data-testid=drop-product] option[value='{mine['product_id']}']").wait_for(state="attached")
    assert page.locator(f"[data-testid=drop-product] option[value='{theirs['product_id']}']").count() == 0
    assert page.locator(f"[data-testid=studio-product][data-product-id='{theirs['product_id']}']").count() == 0
    assert page.get_by_test_id("studio-creator").inner_text().startswith("Second")
    assert pages.errors == [], pages.errors


def test_a_logged_out_visitor_sees_the_stock_move_and_a_buyer_sees_product_names(
    pages, log_in, api, new_user, shoot
) -> None:
    owner, fan = new_user(name="Stocky", creator=True), new_user(name="Vi")
    shop = open_shop(api, owner, "Glass mug", 1800)
    drop = _drop(api, owner, shop, stock=5)
    page = pages.open("visitor")
    answers: list[int] = []
    page.on("response", lambda r: f"/drops/{drop['drop_id']}" in r.url and answers.append(r.status))
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    page.get_by_test_id("login-to-buy").wait_for()
    assert page.get_by_test_id("drop-title").inner_text() == "Glass mug"
    _attr_is(page, "[data-testid=drop-detail]", "data-last-poll", "304")  # the ETag saves the body
    _buy(api, fan, drop["drop_id"], 2)
    page.wait_for_function(
        "document.querySelector('[data-testid=drop-stock-count]').textContent === '3'", timeout=30_000
    )
    assert 304 in answers and "Log in to get it live" in page.get_by_test_id("drop-live-note").inner_text()
    shoot(page, "drop-logged-out")

    buyer = pages.open("orders")
    log_in(buyer, fan)
    buyer.goto(pages.base_url + "#/orders")
    name = buyer.locator("[data-testid=orders-list] [data-testid=order-product]").first
    buyer.wait_for_function(
        "document.querySelector('[data-testid=orders-list] [data-testid=order-product]')?.textContent === 'Glass mug'"
    )
    assert name.inner_text() == "Glass mug"
    shoot(buyer, "orders")
    assert pages.errors == [], pages.errors


def _overlaps(page, a: str, b: str) -> bool:
    return page.evaluate(
        """([a, b]) => {
          const r = document.querySelector(a).getBoundingClientRect();
          return [...document.querySelectorAll(b)].some((t) => {
            const s = t.getBoundingClientRect();
            return r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom;
          });
        }""",
        [a, b],
    )


def test_a_creator_hears_their_drop_start_run_low_and_sell_out_and_a_fans_inbox_rows_stand_apart(
    pages, log_in, api, new_user, shoot
) -> None:
    owner, fan = new_user(name="Told", creator=True), new_user(name="Fay")
    shop = open_shop(api, owner, "Told tee", 2000)
    assert api.post(f"/creators/{shop[0]}/follow", fan.token).status_code == 200
    creator = pages.open("creator")
    phone = pages.open("fan", width=390, height=700)
    log_in(phone, fan)
    drop = _drop(api, owner, shop, start=20, stock=2, low_stock_threshold=1)
    log_in(creator, owner)  # the drops list, not the drop's page: the page watches the creator's drops itself

    # A phone: the fan waits on the drop page; a toast never covers its countdown.
    phone.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    phone.get_by_test_id("follow-button").wait_for()
    phone.wait_for_selector('[data-testid=follow-button][data-following="true"]:not([disabled])')
    phone.get_by_test_id("follow-button").click()  # unfollow, then follow again: two toasts
    phone.wait_for_selector('[data-testid=follow-button][data-following="false"]:not([disabled])')
    phone.get_by_test_id("follow-button").click()
    phone.wait_for_selector('[data-testid=follow-button][data-following="true"]')
    phone.wait_for_function("document.querySelectorAll('[data-testid=toast]').length === 2")
    assert not _overlaps(phone, "[data-testid=drop-countdown]", "[data-testid=toast]")

    started = creator.locator('[data-testid=toast][data-type="drop_started"]')
    started.wait_for(timeout=45_000)
    assert "Your drop Told tee is live" in started.inner_text()
    _buy(api, fan, drop["drop_id"], 1)
    creator.locator('[data-testid=toast][data-type="stock_low"]').wait_for(timeout=45_000)
    _buy(api, new_user(name="Gus"), drop["drop_id"], 1)
    sold = creator.locator('[data-testid=toast][data-type="sold_out"]')
    sold.wait_for(timeout=45_000)
    assert "Your drop sold out" in sold.inner_text()

    # The fan's inbox: one card per notification, none touching the next.
    inbox = f"/users/{fan.user_id}/notifications?limit=20"
    wait_for(lambda: len(api.get(inbox, fan.token).json()["items"]) >= 3, timeout=45)
    phone.goto(pages.base_url + "#/inbox")
    phone.wait_for_function("document.querySelectorAll('[data-testid=inbox-item]').length >= 3")
    gaps = phone.evaluate(
        """[...document.querySelectorAll('[data-testid=inbox-item]')].map((r) => r.getBoundingClientRect())
           .map((r, i, all) => i ? r.top - all[i - 1].bottom : 99)"""
    )
    assert min(gaps) >= 4, gaps
    shoot(phone, "inbox")
    assert pages.errors == [], pages.errors
