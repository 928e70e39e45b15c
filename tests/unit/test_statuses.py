"""Drop and order statuses are one enumeration each, and the web page derives a drop's status with the
rule the API uses, generated from chalicelib.core.statuses into web/js/statuses.js."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core import statuses
from chalicelib.core.statuses import DropClock, DropStatus, OrderStatus, drop_status_at

ROOT = Path(__file__).resolve().parents[2]
STATUSES_JS = ROOT / "web" / "js" / "statuses.js"


def test_the_web_pages_statuses_are_the_generators_output() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "chalicelib.core.statuses", "--js"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert generated == statuses.javascript()
    assert STATUSES_JS.read_text(encoding="utf-8") == generated


def test_the_generated_module_holds_every_status_and_the_rule_in_order() -> None:
    text = statuses.javascript()
    for member in [*DropStatus, *OrderStatus]:
        assert f'  "{member.name}": "{member.value}",' in text
    returns = [line.strip() for line in text.splitlines() if "return DropStatus." in line]
    order = ["CANCELLED", "ENDED", "SCHEDULED", "SOLD_OUT", "LIVE"]
    assert [line.rsplit(".", 1)[1].rstrip(";") for line in returns] == order


def test_the_web_page_asks_the_generated_rule_for_a_drops_status() -> None:
    store = (ROOT / "web" / "js" / "store.js").read_text(encoding="utf-8")
    assert 'import { dropStatusAt } from "./statuses.js";' in store
    assert "return dropStatusAt(drop, now());" in store
    assert '"sold_out"' not in store and '"scheduled"' not in store


@given(
    now=st.integers(0, 100),
    start=st.integers(0, 100),
    length=st.integers(1, 100),
    stock=st.integers(-1, 3),
    stored=st.sampled_from(list(DropStatus)),
)
def test_a_drops_status_comes_from_the_clock_then_the_stock(
    now: int, start: int, length: int, stock: int, stored: DropStatus
) -> None:
    end = start + length
    reads: list[int] = []

    def units() -> int:
        reads.append(stock)
        return stock

    status = drop_status_at(DropClock(now, start, end, units, stored))
    if stored == DropStatus.CANCELLED:
        assert status == DropStatus.CANCELLED  # by its creator: for good
    elif stored == DropStatus.ENDED or now >= end:
        assert status == DropStatus.ENDED
    elif now < start:
        assert status == DropStatus.SCHEDULED
    else:
        assert status == (DropStatus.SOLD_OUT if stock <= 0 else DropStatus.LIVE)
    # The stock (a read of every shard, for a sharded drop) is read only when the clock leaves it to decide.
    assert len(reads) == (1 if status in (DropStatus.SOLD_OUT, DropStatus.LIVE) else 0)


def test_statuses_are_their_wire_names() -> None:
    assert [str(s) for s in DropStatus] == ["scheduled", "live", "sold_out", "ended", "cancelled"]
    assert [str(s) for s in OrderStatus] == [
        "pending_payment",
        "confirmed",
        "payment_failed",
        "expired",
        "cancelled",
        "refunded",
    ]
    assert statuses.PRODUCT_STATUSES == ("draft", "scheduled", "live", "sold_out", "ended", "cancelled")
