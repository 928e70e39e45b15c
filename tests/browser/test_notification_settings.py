"""The web page's notification settings: switches saved as they change, "Notify me" where the
browser can push, the service worker, and the dev stage's link to the e-mails it sent."""

from __future__ import annotations

import pytest

from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_switch_turned_off_on_the_page_is_off_at_the_api(pages, log_in, api, new_user) -> None:
    fan = new_user(name="Sam")
    page = pages.open("fan")
    log_in(page, fan)
    page.get_by_test_id("nav-settings").click()
    switch = page.get_by_test_id("switch-email-drop_started")
    switch.wait_for()
    assert switch.is_checked() and page.get_by_test_id("switch-web_push-draw_won").is_checked()
    switch.uncheck()
    path = f"/users/{fan.user_id}/notification-settings"
    wait_for(lambda: api.get(path, fan.token).json()["email"]["drop_started"] is False, timeout=20)
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    page.get_by_test_id("switch-email-drop_started").wait_for()
    assert not page.get_by_test_id("switch-email-drop_started").is_checked()

    assert page.get_by_test_id("notify-me").is_visible()
    link = page.get_by_test_id("dev-emails").get_attribute("href")
    assert link == f"/_dev/emails?to={fan.email.replace('@', '%40')}"
    assert api.get(link).json() == {"items": []}
    scope = page.evaluate("navigator.serviceWorker.register('sw.js').then((r) => r.scope)")
    assert scope == pages.base_url
    assert pages.errors == []
