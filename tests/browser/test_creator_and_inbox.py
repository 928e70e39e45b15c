"""The web page for a creator on their own drop (sales instead of Buy/Follow, live), the inbox's read
state and unread badge, the drops page without stray text, and toasts that never cover the Buy button."""

from __future__ import annotations

import time
import uuid

import pytest

from chalicelib.core.validation import format_time
from chalicelib.delivery import notifications
from chalicelib.schema.messages import Envelope
from tests.browser.test_live_drop import _iso
from tests.support import open_shop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _drop(api, owner, stock: int = 5, start: float = -5, **extra) -> tuple[str, dict]:
    creator_id, product = open_shop(api, owner, "Poster", 1250)
    body = {"product_id": product["product_id"], "start_time": _iso(start), "end_time": _iso(3600), "stock": stock}
    response = api.post(f"/creators/{creator_id}/drops", owner.token, json=body | extra)
    assert response.status_code == 201, response.text
    return creator_id, response.json()


def _buy(api, user, drop_id: str, quantity: int = 1, card: str = "tok_visa") -> dict:
    body = {"drop_id": drop_id, "quantity": quantity, "payment_token": card}
    response = api.post("/orders", user.token, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def _text_is(page, testid: str, expected: str, timeout: int = 45_000) -> None:
    page.wait_for_function(
        "([id, text]) => document.querySelector(`[data-testid=${id}]`)?.textContent === text",
        arg=[testid, expected],
        polling=100,
        timeout=timeout,
    )


def test_a_creator_sees_their_drops_sales_live_instead_of_buy_and_follow(pages, log_in, api, new_user) -> None:
    owner, fan, other = new_user(name="Nova", creator=True), new_user(name="Sam"), new_user(name="Kim")
    creator_id, drop = _drop(api, owner, stock=6, per_user_limit=3)
    paid = _buy(api, fan, drop["drop_id"], 2)
    waiting = _buy(api, other, drop["drop_id"], 1, "tok_threeDSecureRequired")

    page = pages.open("creator")
    log_in(page, owner)
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    page.get_by_test_id("creator-view").wait_for()
    assert page.get_by_test_id("buy-button").count() == 0
    assert page.get_by_test_id("follow-button").count() == 0
    _text_is(page, "sales-orders-confirmed", "1")  # the payment settles in the background
    _text_is(page, "sales-orders-pending_payment", "1")
    assert page.get_by_test_id("sales-orders-payment_failed").inner_text() == "0"
    assert page.get_by_test_id("sales-units").inner_text() == "2 / 6"
    assert page.get_by_test_id("sales-reserved").inner_text() == "1"
    assert "25.00" in page.get_by_test_id("sales-revenue").inner_text()
    times = page.locator("[data-testid=sales-recent-order] time").evaluate_all("els => els.map(e => e.dateTime)")
    assert times == [waiting["created_at"], paid["created_at"]]

    # Someone buys while the creator watches: stock and sales move without a reload.
    page.evaluate("window.__sameDocument = true")
    _buy(api, other, drop["drop_id"], 1)
    _text_is(page, "drop-stock-count", "2")
    _text_is(page, "sales-orders-confirmed", "2")
    _text_is(page, "sales-units", "3 / 6")
    assert page.evaluate("window.__sameDocument") is True
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the view fits without sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1100, "height": 900})

    # Their own creator page has no Follow button; the studio lists the drop with its sales.
    page.goto(pages.base_url + f"#/creator/{creator_id}")
    page.get_by_test_id("creator-name").wait_for()
    assert page.get_by_test_id("follow-button").count() == 0
    page.goto(pages.base_url + "#/studio")
    sales = page.locator(f"[data-testid=drop-card][data-drop-id='{drop['drop_id']}'] [data-testid=drop-sales]")
    sales.wait_for()
    assert sales.inner_text().startswith("3 sold")

    # Anyone else on the same drop gets Buy and Follow, and no sales.
    fan_page = pages.open("fan")
    log_in(fan_page, fan)
    fan_page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    fan_page.get_by_test_id("buy-button").wait_for()
    fan_page.get_by_test_id("follow-button").wait_for()
    assert fan_page.get_by_test_id("creator-view").count() == 0
    assert pages.errors == [], pages.errors


def test_a_creator_hears_of_their_own_drops_start_low_stock_and_sell_out_as_theirs(
    pages, log_in, api, new_user
) -> None:
    owner, fan = new_user(name="Ada", creator=True), new_user(name="Max")
    _, drop = _drop(api, owner, stock=3, start=4, low_stock_threshold=1)
    drop_id = drop["drop_id"]
    page = pages.open("creator")
    log_in(page, owner)
    page.goto(pages.base_url + f"#/drop/{drop_id}")
    page.wait_for_selector('[data-testid=drop-detail][data-subscribed="true"]')
    started = page.locator('[data-testid=toast][data-type="drop_started"]')
    started.wait_for(timeout=45_000)
    assert "Your drop Poster is live" in started.inner_text()
    assert "creator you follow" not in started.inner_text()
    _buy(api, fan, drop_id, 2)  # down to 1: below the threshold
    page.locator('[data-testid=toast][data-type="stock_low"]').wait_for(timeout=45_000)
    assert "Only 1 left of Poster" in page.locator('[data-testid=toast][data-type="stock_low"]').inner_text()
    _buy(api, fan, drop_id, 1)
    page.locator('[data-testid=toast][data-type="sold_out"]').wait_for(timeout=45_000)

    # The owner follows no one, yet all three are in their inbox, in a creator's words.
    deadline = time.time() + 60
    while len(api.get(f"/users/{owner.user_id}/notifications", owner.token).json()["items"]) < 3:
        assert time.time() < deadline, "the owner's inbox rows never arrived"
        time.sleep(0.3)
    page.get_by_test_id("nav-inbox").click()
    own = page.locator('[data-testid=inbox-item][data-own="true"] strong')
    own.nth(2).wait_for()
    assert sorted(own.all_inner_texts()) == ["Only 1 left of Poster", "Poster sold out", "Your drop Poster is live"]
    assert page.locator("[data-testid=inbox-item]").count() == 3
    assert pages.errors == [], pages.errors


def test_the_drops_page_shows_no_stray_text_when_logged_in(pages, log_in, new_user) -> None:
    page = pages.open("drops")
    log_in(page, new_user(name="Lou"))
    page.get_by_test_id("drop-list").wait_for()
    stray = page.evaluate(
        "[...document.querySelector('main').childNodes].filter(n => n.nodeType === 3 && n.textContent.trim())"
        ".map(n => n.textContent)"
    )
    assert stray == []
    assert "null" not in page.locator("main").inner_text().split()


def _inbox_rows(user_id: str, count: int) -> list[Envelope]:
    base = 1_900_000_000_000 + int(uuid.uuid4().int % 1_000_000) * 1000
    events = []
    for n in range(count):
        at = base + n * 1000
        event = Envelope(str(uuid.uuid4()), "order_confirmed", format_time(at) or "", at, {"order_id": f"or_{n}"})
        notifications.write_inbox(event, [user_id])
        events.append(event)
    return events


def test_the_inbox_badge_matches_the_page_and_read_state_sticks(pages, log_in, new_user) -> None:
    fan = new_user(name="Rae")
    _inbox_rows(fan.user_id, 3)
    page = pages.open("fan")
    log_in(page, fan)
    _text_is(page, "inbox-badge", "3")
    page.get_by_test_id("nav-inbox").click()
    _text_is(page, "inbox-unread", "3 unread")
    # The count line can be filled by a badge refresh still in flight from the login, before the
    # inbox's list arrives: wait for its rows.
    page.locator("[data-testid=inbox-item].unread").nth(2).wait_for()
    assert page.locator("[data-testid=inbox-item].unread").count() == 3

    page.locator("[data-testid=inbox-item].unread [data-testid=inbox-mark-read]").first.click()
    _text_is(page, "inbox-badge", "2")
    _text_is(page, "inbox-unread", "2 unread")
    assert page.locator("[data-testid=inbox-item].unread").count() == 2

    page.get_by_test_id("inbox-mark-all").click()
    page.wait_for_selector("[data-testid=inbox-badge]", state="hidden")
    _text_is(page, "inbox-unread", "All read")
    assert page.locator("[data-testid=inbox-item].unread").count() == 0

    # The read state is the server's: a fresh tab shows the same.
    again = pages.open("fan-again")
    log_in(again, fan)
    again.get_by_test_id("nav-inbox").click()
    again.locator("[data-testid=inbox-item]").nth(2).wait_for()
    _text_is(again, "inbox-unread", "All read")
    assert again.locator("[data-testid=inbox-item]").count() == 3
    assert again.locator("[data-testid=inbox-item].unread").count() == 0
    assert again.get_by_test_id("inbox-badge").is_hidden()
    assert pages.errors == [], pages.errors


def test_a_pushed_event_that_is_not_an_inbox_row_leaves_no_badge(pages, log_in, api, new_user) -> None:
    owner, viewer, buyer = new_user(name="Zed", creator=True), new_user(name="Vi"), new_user(name="Bo")
    _, drop = _drop(api, owner, stock=1)
    page = pages.open("viewer")
    log_in(page, viewer)
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    page.wait_for_selector('[data-testid=drop-detail][data-subscribed="true"]')
    _buy(api, buyer, drop["drop_id"], 1)
    # The viewer watches the drop (a push) but does not follow its creator (no inbox row).
    page.locator('[data-testid=toast][data-type="sold_out"]').wait_for(timeout=45_000)
    with page.expect_response(lambda r: "/notifications?limit=1" in r.url, timeout=30_000) as looked:
        pass
    assert looked.value.json()["unread"] == 0
    assert page.get_by_test_id("inbox-badge").is_hidden()
    page.get_by_test_id("nav-inbox").click()
    page.get_by_test_id("inbox-empty").wait_for()


@pytest.mark.parametrize("width,height", [(390, 700), (1100, 900)], ids=["phone", "desktop"])
def test_toasts_never_cover_the_buy_button(pages, log_in, api, new_user, width, height) -> None:
    owner, fan = new_user(name="Ivy", creator=True), new_user(name="Tom")
    _, drop = _drop(api, owner, stock=20, per_user_limit=10)
    page = pages.open("fan", width=width, height=height)
    log_in(page, fan)
    page.goto(pages.base_url + f"#/drop/{drop['drop_id']}")
    buy = page.get_by_test_id("buy-button")
    buy.wait_for()
    # The Buy button where the toasts would be: at the bottom of the window.
    buy.evaluate("el => el.scrollIntoView({block: 'end'})")
    page.get_by_test_id("follow-button").click()  # a toast
    for _ in range(2):
        buy.click()  # an order placed, and its confirmation toast later
    page.locator('[data-testid=toast][data-type="order_confirmed"]').first.wait_for(timeout=45_000)
    covering = page.evaluate(
        """() => {
          const b = document.querySelector('[data-testid=buy-button]').getBoundingClientRect();
          const shown = [...document.querySelectorAll('[data-testid=toast]')].filter(
            t => getComputedStyle(t).display !== 'none' && getComputedStyle(t.parentElement).visibility !== 'hidden');
          return shown.map(t => t.getBoundingClientRect()).filter(
            r => r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom).length;
        }"""
    )
    assert covering == 0
    buy.click(trial=True)  # Playwright's own check: nothing else would receive the click
    assert pages.errors == [], pages.errors
