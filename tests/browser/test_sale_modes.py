"""Queue and draw drops in a real browser: join the line, see your place, your admission's countdown and
buy with it; enter a draw, see its commitment, your result, buy as the winner and check the draw."""

from __future__ import annotations

import pytest

from tests.support import iso, open_shop, sale_drop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _open_drop(pages, log_in, user, drop_id: str, name: str):
    page = pages.open(name)
    log_in(page, user)
    return _goto_drop(pages, page, drop_id)


def _goto_drop(pages, page, drop_id: str):
    page.goto(pages.base_url + f"#/drop/{drop_id}")
    page.get_by_test_id("line-box").wait_for()
    return page


def test_a_fan_joins_the_line_sees_their_place_and_admission_countdown_then_buys(
    pages, log_in, api, new_user, shoot
) -> None:
    owner, fan = new_user(name="Queue maker", creator=True), new_user(name="Rae")
    creator_id, product = open_shop(api, owner, "Numbered vinyl", 3000)
    drop = sale_drop(api, (owner, creator_id, product), "queue", start=12, stock=3, per_user_limit=1)

    page = _open_drop(pages, log_in, fan, drop["drop_id"], "queue-fan")
    box = page.get_by_test_id("line-box")
    assert page.get_by_test_id("buy-form").is_hidden()  # no admission yet: no Buy
    page.get_by_test_id("line-join").click()
    page.wait_for_selector('[data-testid=line-box][data-state="waiting"]')
    assert "in the line" in box.get_by_test_id("line-status").inner_text()

    # At the start the line is sealed and served: the place becomes admitted with its countdown.
    page.wait_for_selector('[data-testid=line-box][data-state="admitted"]', timeout=45_000)
    clock = page.get_by_test_id("admission-countdown")
    clock.wait_for()
    assert "Buy within 00:0" in clock.inner_text()
    shoot(page, "queue-admitted")
    page.get_by_test_id("buy-button").click()
    page.wait_for_selector(
        '[data-testid=drop-orders] [data-testid=order-status][data-status="confirmed"]', timeout=30_000
    )
    assert page.get_by_test_id("order-product").first.inner_text() == "Numbered vinyl"
    page.wait_for_selector('[data-testid=line-box][data-state="bought"]', timeout=15_000)
    assert pages.errors == [], pages.errors


def test_two_fans_enter_a_draw_one_wins_and_buys_and_both_check_it(pages, log_in, api, new_user, shoot) -> None:
    owner, ana, ben = new_user(name="Draw maker", creator=True), new_user(name="Ana"), new_user(name="Ben")
    creator_id, product = open_shop(api, owner, "Artist proof", 9000)
    logged_in = {}
    for user, name in ((ana, "draw-ana"), (ben, "draw-ben")):
        logged_in[name] = pages.open(name)
        log_in(logged_in[name], user)
    # Both pages enter within about 3 s of the drop's creation on a quiet machine: 15 s leaves room for a busy one.
    drop = sale_drop(api, (owner, creator_id, product), "draw", start=15, stock=1)
    drop_id = drop["drop_id"]

    views = {}
    for name, page in logged_in.items():
        _goto_drop(pages, page, drop_id)
        commitment = page.get_by_test_id("draw-commitment").inner_text()
        assert commitment == drop["draw"]["commitment"] and len(commitment) == 64
        page.get_by_test_id("draw-check").click()
        page.wait_for_selector('[data-testid=draw-check-result][data-ok="pending"]')  # no seed before the draw
        page.get_by_test_id("line-join").click()
        page.wait_for_selector('[data-testid=line-box][data-state="waiting"]')
        assert "You're in the draw" in page.get_by_test_id("line-status").inner_text()
        views[name] = page
    shoot(views["draw-ana"], "draw-entered")

    # The draw: one of the two wins (draw_won), the other is next in the draw order.
    for page in views.values():
        page.wait_for_selector(
            '[data-testid=line-box][data-result="won"], [data-testid=line-box][data-result="waiting"]', timeout=45_000
        )
    results = {name: page.get_by_test_id("line-box").get_attribute("data-result") for name, page in views.items()}
    assert sorted(results.values()) == ["waiting", "won"], results
    winner = next(page for name, page in views.items() if results[name] == "won")
    other = next(page for name, page in views.items() if results[name] != "won")
    assert "You won the draw" in winner.get_by_test_id("line-status").inner_text()
    assert "#2" in other.get_by_test_id("line-status").inner_text()
    assert other.get_by_test_id("buy-form").is_hidden()
    shoot(winner, "draw-won")

    winner.get_by_test_id("buy-button").click()
    winner.wait_for_selector(
        '[data-testid=drop-orders] [data-testid=order-status][data-status="confirmed"]', timeout=30_000
    )

    # Anyone can recompute the draw in the browser from the published seed and entry list.
    for page in (winner, other):
        page.get_by_test_id("draw-check").click()
        page.wait_for_selector('[data-testid=draw-check-result][data-ok="true"]')
        assert "seed matches the commitment" in page.get_by_test_id("draw-check-result").inner_text()
    shoot(other, "draw-checked")
    assert pages.errors == [], pages.errors


def test_a_draw_that_ended_tells_the_entrant_it_never_reached_that_it_lost(pages, log_in, api, new_user) -> None:
    owner, fans = new_user(name="Short draw", creator=True), [new_user(name="Cy"), new_user(name="Di")]
    creator_id, product = open_shop(api, owner, "Test pressing", 2000)
    drop = sale_drop(api, (owner, creator_id, product), "draw", start=8, stock=1, end_time=iso(22))
    drop_id = drop["drop_id"]
    for fan in fans:
        assert api.post(f"/drops/{drop_id}/entries", fan.token).status_code == 201
    pages_ = [_open_drop(pages, log_in, fan, drop_id, f"short-{fan.name}") for fan in fans]
    for page in pages_:
        page.wait_for_selector(
            '[data-testid=line-box][data-result="won"], [data-testid=line-box][data-result="lost"]', timeout=60_000
        )
    results = sorted(page.get_by_test_id("line-box").get_attribute("data-result") for page in pages_)
    assert results == ["lost", "won"], results
    loser = next(page for page in pages_ if page.get_by_test_id("line-box").get_attribute("data-result") == "lost")
    assert "didn't reach you" in loser.get_by_test_id("line-status").inner_text()
    assert pages.errors == [], pages.errors
