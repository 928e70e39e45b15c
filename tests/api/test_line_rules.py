"""The queue's and the draw's rules as Hypothesis state machines (docs/sale-modes.md), run against the
dev stack: random joins, placements, ticks of the serving counter, purchases and lapsed windows, with
the rules checked after every step. The line's clock is driven by the test (`at_ms`); orders use the
real clock, so the drop starts a few seconds after it is made."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.core import draws
from chalicelib.core.errors import LiveDropError
from chalicelib.core.statuses import RELEASED
from chalicelib.core.validation import parse_time
from chalicelib.delivery import serving
from chalicelib.domain import admissions, lines, orders
from chalicelib.schema.models import Admission, Drop, Line, Notification, Order
from tests.api.test_line_fairness import wait_until
from tests.support import open_shop, place_line, place_order, sale_drop

PENDING = "tok_threeDSecureRequired"
RULES = settings(
    # The unit tier runs these machines with more examples (tests/unit/domain/test_lines.py): here they
    # prove the rules hold on the dev stack too.
    max_examples=2,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    # Each step talks to the dev stack: shrinking a failure would take minutes; the steps are printed.
    phases=[Phase.explicit, Phase.generate],
)
WINDOW_MS = 60_000


class LineRules(RuleBasedStateMachine):
    """What both modes share: the drop, its clock, purchases and the invariants of the stock and counter."""

    api = shop = None
    mode = "queue"

    def make_drop(self, stock: int, **extra) -> None:
        drop = sale_drop(self.api, self.shop, self.mode, 3, stock, purchase_window_seconds=WINDOW_MS // 1000, **extra)
        self.drop_id, self.initial = drop["drop_id"], stock
        self.start = parse_time("start_time", drop["start_time"])
        Line(drop_id=self.drop_id).update(actions=[Line.active.remove()])
        self.clock, self.placed, self.users = 0, False, [f"u_{uuid.uuid4().hex}" for _ in range(6)]
        self.purchases: dict[str, int] = {}

    def entries(self) -> dict[str, Admission]:
        return {e.user_id: e for e in Admission.query(self.drop_id, consistent_read=True)}

    def place(self) -> None:
        serving.advance(self.drop_id, self.start)
        place_line(self.drop_id)
        self.placed = True

    @precondition(lambda self: self.placed)
    @rule(seconds=st.sampled_from([0, 1, 30, 61, 125]))
    def tick(self, seconds: int) -> None:
        self.clock += seconds * 1000
        serving.advance(self.drop_id, self.start + self.clock)

    @precondition(lambda self: self.placed)
    @rule(index=st.integers(0, 5), quantity=st.integers(1, 2), again=st.booleans())
    def buy(self, index: int, quantity: int, again: bool) -> None:
        user = self.users[index]
        entry = self.entries().get(user)
        state = lines.state_of(entry, self.start + self.clock) if entry else None
        if state not in ("admitted", "bought") or (state == "bought" and not again):
            return  # only a user the line's clock admits may try (orders run on the real clock)
        wait_until(self.start)
        token = admissions.issue_token(user, self.drop_id, int(entry.admission_expires))
        try:
            place_order(user, uuid.uuid4().hex, self.drop_id, quantity, PENDING, token)
            self.purchases[user] = self.purchases.get(user, 0) + 1
            assert state == "admitted" and quantity <= self.limit, "an admission bought twice or too much"
        except LiveDropError as error:
            assert state == "bought" or quantity > self.limit, f"an admitted user was refused: {error.code}"

    @invariant()
    def one_purchase_per_admission_and_the_stock_adds_up(self) -> None:
        if not getattr(self, "drop_id", None):
            return
        assert all(count == 1 for count in self.purchases.values())
        drop = Drop.get(self.drop_id, consistent_read=True)
        # The index projects keys only (as in AWS): the orders are read by key.
        placed = orders.orders_of([o.order_id for o in Order.by_drop.query(self.drop_id)])
        held = sum(int(o.quantity) for o in placed if o.status not in RELEASED)
        assert int(drop.stock) >= 0 and int(drop.stock) + held == self.initial

    @invariant()
    def the_counter_admits_in_order_and_never_past_the_stock(self) -> None:
        if not getattr(self, "placed", False):
            return
        line = Line.get(self.drop_id, consistent_read=True)
        now = self.start + self.clock
        entries = self.entries().values()
        admitted = [int(e.position) for e in entries if e.admitted_at is not None]
        assert all(position <= int(line.serving) for position in admitted)
        holding = sum(1 for e in entries if lines.state_of(e, now) == "admitted")
        assert holding <= int(Drop.get(self.drop_id, consistent_read=True).stock)


class QueueRules(LineRules):
    mode = "queue"
    limit = 1

    @initialize(stock=st.integers(1, 3))
    def drop(self, stock: int) -> None:
        self.make_drop(stock, admissions_per_second=1)

    @rule(index=st.integers(0, 5))
    def join(self, index: int) -> None:
        at = self.start + self.clock if self.placed else self.start - 1000
        try:
            lines.join_queue(self.users[index], self.drop_id, at_ms=at)
        except LiveDropError as error:
            assert error.code == "rate_limited"  # a user joining again and again

    @precondition(lambda self: not self.placed)
    @rule()
    def start_the_line(self) -> None:
        self.place()

    @invariant()
    def one_place_per_user_and_no_gaps(self) -> None:
        if not getattr(self, "placed", False):
            return
        entries = list(self.entries().values())
        early = sorted(int(e.position) for e in entries if e.rank is not None)
        late = sorted(int(e.position) for e in entries if e.rank is None)
        assert early == list(range(1, len(early) + 1))
        assert late == list(range(len(early) + 1, len(early) + len(late) + 1))


class DrawRules(LineRules):
    mode = "draw"
    limit = 1

    @initialize(stock=st.integers(1, 3), entrants=st.integers(0, 6))
    def drop(self, stock: int, entrants: int) -> None:
        self.make_drop(stock)
        for user in self.users[:entrants]:
            lines.enter_draw(user, self.drop_id, at_ms=self.start - 1000)
        self.place()

    @invariant()
    def winners_follow_the_draw_order_and_nobody_it_may_pick_has_lost(self) -> None:
        if not getattr(self, "placed", False):
            return
        drop = Drop.get(self.drop_id, consistent_read=True)
        entries = self.entries()
        order = draws.draw_order(str(drop.draw_seed), [str(e.ticket) for e in entries.values()])
        position_of = {str(e.ticket): int(e.position) for e in entries.values()}
        assert [position_of[ticket] for ticket in order] == list(range(1, len(order) + 1))
        for user, entry in entries.items():
            told = [r.event_type for r in Notification.query(user, consistent_read=True) if r.drop_id == self.drop_id]
            assert "draw_lost" not in told, "draw_lost before the drop's end"
            assert told.count("draw_won") == (1 if entry.admitted_at is not None else 0)
        everyone_offered = all(e.admitted_at is not None for e in entries.values())
        if drop.released_at is not None:
            assert everyone_offered and int(drop.stock) > 0


def test_queue_rules(api, new_user) -> None:
    owner = new_user(name="Maker", creator=True)
    QueueRules.api, QueueRules.shop = api, (owner, *open_shop(api, owner, "Queue print", 1000))
    run_state_machine_as_test(QueueRules, settings=RULES)


def test_draw_rules(api, new_user) -> None:
    owner = new_user(name="Maker", creator=True)
    DrawRules.api, DrawRules.shop = api, (owner, *open_shop(api, owner, "Draw print", 1000))
    run_state_machine_as_test(DrawRules, settings=RULES)
