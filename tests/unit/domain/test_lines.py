"""Queues and draws on the lines, serving and orders functions themselves: who may join when, one place
per user, admissions that buy once, draws anyone can verify, and the line rules of the API tier's
state machines run with many more examples (the drop is made by the domain, not over HTTP)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, run_state_machine_as_test

from chalicelib.core import draws
from chalicelib.core.errors import (
    AdmissionExpiredError,
    AdmissionRequiredError,
    InvalidRequestError,
    LineClosedError,
    LineNotOpenError,
    NotInLineError,
    WrongSaleModeError,
)
from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import admissions, catalog, lines
from chalicelib.schema.models import Drop, Line
from tests.api.test_line_rules import WINDOW_MS, DrawRules, QueueRules
from tests.support import place_line
from tests.unit.domain.shop import HOUR_MS, MINUTE_MS, Shop, examples, new_drop, new_shop, new_user, order

LEAD_MS = 2_000  # a line's drop starts this soon after it is made: purchases run on the real clock


@pytest.fixture(scope="module")
def shop() -> Shop:
    return new_shop()


def starts(drop: dict) -> int:
    return parse_time("start_time", drop["start_time"])


def test_a_queue_is_joined_only_in_its_window_and_once_per_user(shop) -> None:
    drop = new_drop(shop, 10 * MINUTE_MS, HOUR_MS, sale_mode="queue", queue_opens_before_seconds=60)
    drop_id, start = drop["drop_id"], starts(drop)
    user = new_user()
    with pytest.raises(LineNotOpenError):
        lines.join_queue(user, drop_id, at_ms=start - 61_000)
    first, created = lines.join_queue(user, drop_id, at_ms=start - 30_000)
    again, created_again = lines.join_queue(user, drop_id, at_ms=start - 20_000)
    assert created and not created_again and again["joined_at"] == first["joined_at"]
    assert first["state"] == "waiting" and first["admission_token"] is None
    with pytest.raises(LineClosedError):
        lines.join_queue(new_user(), drop_id, at_ms=start + HOUR_MS)
    with pytest.raises(NotInLineError):
        lines.my_place(new_user(), drop_id, "queue")
    with pytest.raises(WrongSaleModeError):
        lines.enter_draw(user, drop_id, at_ms=start - 30_000)
    assert int(Line.get(drop_id, consistent_read=True).early_count) == 1


def test_a_draw_takes_one_entry_per_user_until_the_draw(shop) -> None:
    drop = new_drop(shop, 10 * MINUTE_MS, HOUR_MS, sale_mode="draw")
    drop_id, start = drop["drop_id"], starts(drop)
    user = new_user()
    entry, created = lines.enter_draw(user, drop_id, at_ms=start - 1000)
    same, created_again = lines.enter_draw(user, drop_id, at_ms=start - 500)
    assert created and not created_again and same["entry_id"] == entry["entry_id"]
    with pytest.raises(LineClosedError):
        lines.enter_draw(new_user(), drop_id, at_ms=start)
    with pytest.raises(WrongSaleModeError):
        lines.join_queue(user, drop_id, at_ms=start - 1000)
    first_come = new_drop(shop)["drop_id"]
    with pytest.raises(WrongSaleModeError):
        lines.enter_draw(user, first_come)


def test_a_line_drop_sells_only_with_a_valid_admission_and_first_come_takes_none(shop) -> None:
    drop_id = new_drop(shop, LEAD_MS, HOUR_MS, sale_mode="queue")["drop_id"]
    user = new_user()
    with pytest.raises(AdmissionRequiredError):
        order(user, drop_id)
    with pytest.raises(AdmissionRequiredError):  # another user's token
        order(user, drop_id, admission_token=admissions.issue_token(new_user(), drop_id, 2**42))
    with pytest.raises(AdmissionExpiredError):
        order(user, drop_id, admission_token=admissions.issue_token(user, drop_id, 1))
    with pytest.raises(InvalidRequestError, match="admission_token"):
        order(user, new_drop(shop)["drop_id"], admission_token=admissions.issue_token(user, drop_id, 2**42))


@settings(max_examples=examples(100))
@given(seed=st.text("0123456789abcdef", min_size=64, max_size=64), entries=st.sets(st.uuids().map(str), max_size=30))
def test_the_draw_order_is_a_permutation_anyone_recomputes_from_the_seed(seed: str, entries: set[str]) -> None:
    order_ = draws.draw_order(seed, list(entries))
    assert sorted(order_) == sorted(entries)
    assert draws.draw_order(seed, list(reversed(order_))) == order_  # the entry order does not matter
    scores = [hashlib.sha256(f"{seed}:{entry}".encode()).hexdigest() for entry in order_]
    assert scores == sorted(scores)
    assert draws.commitment_of(seed) == hashlib.sha256(seed.encode()).hexdigest()


def test_a_placed_draw_orders_its_entries_by_the_published_seed(shop) -> None:
    drop = new_drop(shop, LEAD_MS, HOUR_MS, sale_mode="draw", stock=2)
    drop_id, start = drop["drop_id"], starts(drop)
    users = [new_user() for _ in range(7)]
    tickets = {user: lines.enter_draw(user, drop_id, at_ms=start - 1000)[0]["entry_id"] for user in users}
    serving.advance(drop_id, start)
    place_line(drop_id)
    stored = Drop.get(drop_id, consistent_read=True)
    assert draws.commitment_of(str(stored.draw_seed)) == drop["draw"]["commitment"]
    winners_first = draws.draw_order(str(stored.draw_seed), list(tickets.values()))
    places = {user: lines.my_place(user, drop_id, "draw") for user in users}
    assert {user: place["entry_id"] for user, place in places.items()} == tickets
    by_position = sorted(users, key=lambda user: places[user]["position"])
    assert [tickets[user] for user in by_position] == winners_first


# --- the API tier's state machines, on domain-made drops and with more examples -------------------
DOMAIN_RULES = settings(
    max_examples=examples(2),
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],
)


class DomainMade:
    """The drop of a line state machine made by catalog.create_drop, starting LEAD_MS from now."""

    mode: str
    domain_shop: Shop

    def make_drop(self, stock: int, **extra) -> None:
        fields = {"sale_mode": self.mode, "stock": stock, "purchase_window_seconds": WINDOW_MS // 1000, **extra}
        drop = new_drop(self.domain_shop, LEAD_MS, HOUR_MS, **fields)
        self.drop_id, self.initial = drop["drop_id"], stock
        # Made to start LEAD_MS from now (a draw must be), then moved back as if that time had passed:
        # the line's clock is the test's, and orders on the real clock need not wait for the start.
        self.start = starts(drop) - 2 * LEAD_MS
        stored = Drop.get(self.drop_id, consistent_read=True)
        stored.update(actions=[Drop.start_time.set(self.start), Drop.opens_at.set(int(stored.opens_at) - 2 * LEAD_MS)])
        Line(drop_id=self.drop_id).update(actions=[Line.active.remove(), Line.start_time.set(self.start)])
        catalog.drop_cache.clear()
        catalog.terms_cache.clear()
        self.clock, self.placed, self.users = 0, False, [f"u_{uuid.uuid4().hex}" for _ in range(6)]
        self.purchases: dict[str, int] = {}


class DomainQueueRules(DomainMade, QueueRules):
    pass


class DomainDrawRules(DomainMade, DrawRules):
    @invariant()
    def winners_follow_the_draw_order_and_nobody_it_may_pick_has_lost(self) -> None:
        # The API tier also checks the inbox rows, which the deliver queue's consumer writes (no
        # consumer runs here): this is the draw's order and its release rule.
        if not getattr(self, "placed", False):
            return
        drop = Drop.get(self.drop_id, consistent_read=True)
        entries = self.entries()
        drawn = draws.draw_order(str(drop.draw_seed), [str(e.ticket) for e in entries.values()])
        position_of = {str(e.ticket): int(e.position) for e in entries.values()}
        assert [position_of[ticket] for ticket in drawn] == list(range(1, len(drawn) + 1))
        if drop.released_at is not None:
            assert all(e.admitted_at is not None for e in entries.values()) and int(drop.stock) > 0


def test_queue_rules(shop) -> None:
    DomainQueueRules.domain_shop = shop
    run_state_machine_as_test(DomainQueueRules, settings=DOMAIN_RULES)


def test_draw_rules(shop) -> None:
    DomainDrawRules.domain_shop = shop
    run_state_machine_as_test(DomainDrawRules, settings=DOMAIN_RULES)
