"""The creator's view: GET /drops/{id}/sales and GET /creators/{id}/drops, owner only, with figures that
match the orders placed, confirmed, failed and expired (counters kept in the order transactions), a
series over time that adds up to the confirmed orders, and a queue's or draw's line figures."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from chalicelib.core.statuses import RELEASED, OrderStatus
from chalicelib.core.validation import parse_time
from chalicelib.domain import settlement
from chalicelib.edge.openapi import document
from chalicelib.schema.models import Drop, Order
from tests.api import test_orders
from tests.api.test_orders import order, orders_of_drop
from tests.support import open_shop, sale_drop, wait_for

shop = test_orders.shop
make_drop = test_orders.make_drop
PRICE = 1999  # the shop's product price


def status_of(api, user, order_id: str) -> str:
    return api.get(f"/orders/{order_id}", user.token).json()["status"]


def truth(drop_id: str) -> dict:
    """The figures recomputed from the stored orders themselves (a scan: fine in a test)."""
    stored = orders_of_drop(drop_id)
    by_status = {status: 0 for status in (OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED, *RELEASED)}
    for row in stored:
        by_status[str(row.status)] += 1
    confirmed = [row for row in stored if row.status == OrderStatus.CONFIRMED]
    pending = [row for row in stored if row.status == OrderStatus.PENDING_PAYMENT]
    return {
        "orders": by_status,
        "units_sold": sum(int(row.quantity) for row in confirmed),
        "units_reserved": sum(int(row.quantity) for row in pending),
        "revenue_cents": sum(int(row.amount_cents) for row in confirmed),
    }


def figures_of(body: dict) -> dict:
    return {key: body[key] for key in ("orders", "units_sold", "units_reserved", "revenue_cents")}


def check_series(body: dict) -> None:
    """The body is as documented, and its series adds up, slot by slot, to the confirmed orders stored
    (each in the slot it was placed in)."""
    components = document()["components"]
    Draft202012Validator({"$ref": "#/components/schemas/DropSales", "components": components}).validate(body)
    series = body["series"]
    assert len(series) <= 120
    confirmed: dict[int, int] = {}
    for row in orders_of_drop(body["drop_id"]):
        if row.status == OrderStatus.CONFIRMED:
            confirmed[int(row.sales_slot)] = confirmed.get(int(row.sales_slot), 0) + int(row.quantity)
    assert {n: point["sold"] for n, point in enumerate(series) if point["sold"]} == confirmed
    running = 0
    for point in series:
        running += point["sold"]
        assert (point["sold_total"], point["stock"]) == (running, body["initial_stock"] - running)
    assert running == body["units_sold"]


@pytest.fixture()
def sold(api, new_user, shop, make_drop):
    """A drop with one paid order (2 units), one declined (1) and one left awaiting 3-D Secure (3)."""
    drop = make_drop(stock=10)
    paid_by, declined_by, waiting_by = new_user(), new_user(), new_user()
    paid = order(api, paid_by, drop["drop_id"], quantity=2).json()
    declined = order(api, declined_by, drop["drop_id"], quantity=1, token="tok_chargeDeclined").json()
    waiting = order(api, waiting_by, drop["drop_id"], quantity=3, token="tok_threeDSecureRequired").json()
    wait_for(lambda: status_of(api, paid_by, paid["order_id"]) == "confirmed")
    wait_for(lambda: status_of(api, declined_by, declined["order_id"]) == "payment_failed")
    return drop, [paid, declined, waiting]


def test_owner_sees_figures_that_match_the_orders(api, shop, sold) -> None:
    owner = shop[0]
    drop, placed = sold
    response = api.get(f"/drops/{drop['drop_id']}/sales", owner.token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert figures_of(body) == truth(drop["drop_id"])
    assert body["orders"] == {"pending_payment": 1, "confirmed": 1, "payment_failed": 1, "expired": 0, "cancelled": 0}
    assert (body["units_sold"], body["units_reserved"], body["revenue_cents"]) == (2, 3, 2 * PRICE)
    assert body["stock"] == 10 - 2 - 3
    assert body["drop_id"] == drop["drop_id"] and body["initial_stock"] == 10
    # The latest orders, newest first, with their times and statuses (no buyer identities).
    recent = body["recent_orders"]
    assert [r["created_at"] for r in recent] == sorted((p["created_at"] for p in placed), reverse=True)
    assert sorted(r["status"] for r in recent) == ["confirmed", "payment_failed", "pending_payment"]
    assert all(set(r) == {"created_at", "quantity", "status"} for r in recent)
    # Over time: a one-hour drop in one-minute slots from its start, the 2 paid units in the current one.
    check_series(body)
    assert body["series_slot_seconds"] == 60 and body["series"][0]["at"] == drop["start_time"]
    assert body["series"][-1]["sold_total"] == 2 and body["series"][-1]["stock"] == 8
    assert body["line"] is None  # a first-come drop has no line


def test_an_expired_reservation_moves_to_expired_and_gives_its_units_back(api, shop, sold) -> None:
    owner = shop[0]
    drop, placed = sold
    waiting = Order.get(placed[2]["order_id"], consistent_read=True)
    assert settlement.release_reservation(waiting.order_id, OrderStatus.EXPIRED, int(waiting.expires_at) + 1)
    body = api.get(f"/drops/{drop['drop_id']}/sales", owner.token).json()
    assert figures_of(body) == truth(drop["drop_id"])
    assert body["orders"]["expired"] == 1 and body["orders"]["pending_payment"] == 0
    assert body["units_reserved"] == 0 and body["stock"] == 8


def test_the_creators_drop_list_carries_the_same_figures(api, shop, sold, make_drop) -> None:
    owner, creator_id, _ = shop
    drop, _ = sold
    later = make_drop(stock=5, start=600, end=7200)
    response = api.get(f"/creators/{creator_id}/drops", owner.token)
    assert response.status_code == 200, response.text
    items = {item["drop_id"]: item for item in response.json()["items"]}
    assert list(items) == [later["drop_id"], drop["drop_id"]]  # latest start first
    assert figures_of(items[drop["drop_id"]]) == truth(drop["drop_id"])
    assert set(items[later["drop_id"]]["orders"].values()) == {0}
    first = api.get(f"/creators/{creator_id}/drops?limit=1", owner.token).json()
    second = api.get(f"/creators/{creator_id}/drops?limit=1&page={first['next_page']}", owner.token).json()
    assert [i["drop_id"] for i in first["items"] + second["items"]] == [later["drop_id"], drop["drop_id"]]


def test_a_replayed_order_is_counted_once(api, new_user, shop, make_drop) -> None:
    drop = make_drop(stock=5)
    buyer = new_user()
    first = order(api, buyer, drop["drop_id"], key="same-key", token="tok_threeDSecureRequired")
    again = order(api, buyer, drop["drop_id"], key="same-key", token="tok_threeDSecureRequired")
    assert (first.status_code, again.status_code) == (201, 201)
    assert int(Drop.get(drop["drop_id"], consistent_read=True).orders_placed) == 1
    body = api.get(f"/drops/{drop['drop_id']}/sales", shop[0].token).json()
    assert body["orders"]["pending_payment"] == 1 and body["units_reserved"] == 1
    confirmed = next(row for row in orders_of_drop(drop["drop_id"]))
    assert settlement.confirm_payment(confirmed.order_id, "ref") and not settlement.confirm_payment(
        confirmed.order_id, "ref"
    )
    body = api.get(f"/drops/{drop['drop_id']}/sales", shop[0].token).json()
    check_series(body)
    assert body["series"][-1]["sold_total"] == 1


def test_nobody_else_sees_a_creators_sales(api, new_user, shop, sold) -> None:
    owner, creator_id, _ = shop
    drop, _ = sold
    rival = new_user(name="Rival", creator=True)
    for user in (rival, new_user()):
        hidden = api.get(f"/drops/{drop['drop_id']}/sales", user.token)
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "drop_not_found"
        listing = api.get(f"/creators/{creator_id}/drops", user.token)
        assert listing.status_code == 403 and listing.json()["error"]["code"] == "forbidden"
    assert api.get(f"/drops/{drop['drop_id']}/sales").status_code == 401
    assert api.get(f"/creators/{creator_id}/drops").status_code == 401
    assert api.get("/drops/dr_nope/sales", owner.token).json()["error"]["code"] == "drop_not_found"
    assert api.get("/creators/cr_nope/drops", owner.token).json()["error"]["code"] == "creator_not_found"
    assert api.get(f"/creators/{creator_id}/drops?page=garbage", owner.token).status_code == 400


def test_concurrent_orders_and_settlements_keep_the_figures_exact(api, new_user, shop, make_drop) -> None:
    from concurrent.futures import ThreadPoolExecutor

    drop = make_drop(stock=10)
    cards = ["tok_visa", "tok_chargeDeclined", "tok_threeDSecureRequired"]
    buyers = [new_user() for _ in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(
            pool.map(
                lambda n: order(api, buyers[n], drop["drop_id"], quantity=1 + n % 2, token=cards[n % 3]), range(12)
            )
        )
    placed = [a.json() for a in answers if a.status_code == 201]
    assert placed and all(a.status_code in (201, 409, 503) for a in answers)

    def settled() -> bool:
        stored = orders_of_drop(drop["drop_id"])
        # Only the 3-D Secure orders stay pending; every other one is charged or declined by now.
        return len(stored) == len(placed) and all(
            row.status != OrderStatus.PENDING_PAYMENT or row.payment_token == "tok_threeDSecureRequired"
            for row in stored
        )

    wait_for(settled)
    body = api.get(f"/drops/{drop['drop_id']}/sales", shop[0].token).json()
    assert figures_of(body) == truth(drop["drop_id"])
    assert body["stock"] + body["units_sold"] + body["units_reserved"] == body["initial_stock"]
    check_series(body)


def test_settling_an_order_twice_counts_it_once(api, new_user, shop, make_drop) -> None:
    from concurrent.futures import ThreadPoolExecutor

    drop = make_drop(stock=5)
    first = order(api, new_user(), drop["drop_id"], quantity=2, token="tok_threeDSecureRequired").json()
    second = order(api, new_user(), drop["drop_id"], quantity=1, token="tok_threeDSecureRequired").json()
    with ThreadPoolExecutor(max_workers=4) as pool:
        confirmed = list(pool.map(lambda _: settlement.confirm_payment(first["order_id"], "ref"), range(4)))
    assert confirmed.count(True) == 1
    failed = [settlement.release_reservation(second["order_id"], OrderStatus.PAYMENT_FAILED) for _ in range(2)]
    assert failed == [True, False]
    body = api.get(f"/drops/{drop['drop_id']}/sales", shop[0].token).json()
    assert figures_of(body) == truth(drop["drop_id"])
    assert body["orders"] == {"pending_payment": 0, "confirmed": 1, "payment_failed": 1, "expired": 0, "cancelled": 0}
    assert (body["units_sold"], body["revenue_cents"], body["stock"]) == (2, 2 * PRICE, 3)
    check_series(body)


def test_a_cancelled_order_never_counts_and_a_refunded_one_leaves_the_series(api, shop, sold) -> None:
    owner = shop[0]
    drop, placed = sold
    # Its buyer cancels the unpaid order (what POST /orders/{id}/cancel does): it was never sold.
    assert settlement.release_reservation(placed[2]["order_id"], OrderStatus.CANCELLED)
    body = api.get(f"/drops/{drop['drop_id']}/sales", owner.token).json()
    assert body["orders"]["cancelled"] == 1
    check_series(body)
    assert body["series"][-1]["sold_total"] == 2
    # Cancelling the drop refunds the paid order: its units leave the series as they leave units_sold.
    assert api.post(f"/drops/{drop['drop_id']}/cancel", owner.token).status_code == 200
    body = api.get(f"/drops/{drop['drop_id']}/sales", owner.token).json()
    assert body["units_sold"] == 0
    check_series(body)
    assert all(point["sold"] == 0 and point["stock"] == 10 for point in body["series"])


def test_queue_and_draw_drops_show_their_line(api, new_user) -> None:
    owner = new_user(name="Liner", creator=True)
    creator_id, product = open_shop(api, owner, "Lined print", 2000)
    queue = sale_drop(api, (owner, creator_id, product), "queue", 600, 5)
    draw = sale_drop(api, (owner, creator_id, product), "draw", 600, 5)
    fans = [new_user() for _ in range(3)]
    for fan in fans:
        assert api.post(f"/drops/{queue['drop_id']}/queue", fan.token).status_code == 201
    assert api.post(f"/drops/{queue['drop_id']}/queue", fans[0].token).status_code == 200  # a retry: same place
    assert api.post(f"/drops/{draw['drop_id']}/entries", fans[0].token).status_code == 201
    queued = api.get(f"/drops/{queue['drop_id']}/sales", owner.token).json()
    drawn = api.get(f"/drops/{draw['drop_id']}/sales", owner.token).json()
    assert (queued["line"]["joins"], queued["line"]["admissions"]) == (3, 0)
    assert (drawn["line"]["entries"], drawn["line"]["winners"]) == (1, 0)
    # Over time, from the line's opening (the drop's creation here): every join counted once, by now.
    assert queued["line"]["series"][0]["at"] == queue["queue"]["opens_at"]
    assert (queued["line"]["series"][-1]["joins"], queued["line"]["series"][-1]["admissions"]) == (3, 0)
    assert drawn["line"]["series"][-1]["entries"] == 1
    line_span_s = (parse_time("end", queue["end_time"]) - parse_time("opens", queue["queue"]["opens_at"])) / 1000
    assert queued["line"]["slot_seconds"] * 40 >= line_span_s and len(queued["line"]["series"]) <= 40
    for body in (queued, drawn):
        check_series(body)
    assert queued["series"] == [] and drawn["series"] == []  # nothing before the start
    assert api.get(f"/drops/{queue['drop_id']}/sales", fans[0].token).status_code == 404
