"""Drop and order statuses, and the rule that derives a drop's status from the clock and its stock.

The web page holds the same names and the same rule in web/js/statuses.js, generated from this module
(`python -m chalicelib.core.statuses --js`); tests/unit/test_statuses.py fails when the two drift apart.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class DropStatus(StrEnum):
    """A drop's status (stored, and derived for readers by `drop_status_at`)."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    SOLD_OUT = "sold_out"
    ENDED = "ended"
    CANCELLED = "cancelled"  # by its creator (chalicelib.domain.drop_changes)


class OrderStatus(StrEnum):
    """An order's status: pending until paid, then confirmed, or released (its stock given back)."""

    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # by the buyer, before payment (chalicelib.domain.order_changes)
    REFUNDED = "refunded"  # paid, then its drop was cancelled and the charge refunded


# A product shows its latest drop's status, or this one before it has any drop.
DRAFT = "draft"
PRODUCT_STATUSES: tuple[str, ...] = (DRAFT, *DropStatus)
# Orders whose reservation went back to the stock.
RELEASED: tuple[OrderStatus, ...] = (OrderStatus.PAYMENT_FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED)


@dataclass(frozen=True)
class DropClock:
    """What a drop's derived status depends on: the time now, its times, its units left, its stored status."""

    now: int
    start: int
    end: int
    stock: Callable[[], int]  # read only when the clock leaves the stock to decide (shards cost a read)
    stored: str


# The rule, first match wins: each step is the status, its test here, and the same test in the page's
# JavaScript (where `t` is the time now in ms and `drop` the API's drop, times as ISO strings).
_DROP_RULE: tuple[tuple[DropStatus, Callable[[DropClock], bool], str], ...] = (
    (DropStatus.CANCELLED, lambda d: d.stored == DropStatus.CANCELLED, "drop.status === DropStatus.CANCELLED"),
    (
        DropStatus.ENDED,
        lambda d: d.stored == DropStatus.ENDED or d.now >= d.end,
        "drop.status === DropStatus.ENDED || t >= Date.parse(drop.end_time)",
    ),
    (DropStatus.SCHEDULED, lambda d: d.now < d.start, "t < Date.parse(drop.start_time)"),
    (DropStatus.SOLD_OUT, lambda d: d.stock() <= 0, "drop.stock <= 0"),
)
_OTHERWISE = DropStatus.LIVE


def drop_status_at(clock: DropClock) -> DropStatus:
    """The status a reader sees: from the clock and the stock, whatever the scheduler did so far."""
    return next((status for status, holds, _ in _DROP_RULE if holds(clock)), _OTHERWISE)


JS_HEADER = "// Generated from chalicelib/core/statuses.py by `python -m chalicelib.core.statuses --js`: do not edit."


def _js_enum(enum: type[StrEnum]) -> list[str]:
    return [f"export const {enum.__name__} = Object.freeze({{", *(f'  "{m.name}": "{m.value}",' for m in enum), "});"]


def javascript() -> str:
    """web/js/statuses.js: the statuses as ES module constants and the drop status rule as a function."""
    rule = [f"  if ({test}) return DropStatus.{status.name};" for status, _, test in _DROP_RULE]
    return (
        "\n".join(
            [
                JS_HEADER,
                *_js_enum(DropStatus),
                *_js_enum(OrderStatus),
                "/** A drop's status at time `t` (ms) as the API derives it: from the clock and the stock. */",
                "export function dropStatusAt(drop, t) {",
                *rule,
                f"  return DropStatus.{_OTHERWISE.name};",
                "}",
            ]
        )
        + "\n"
    )


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["--js"]:
        print("usage: python -m chalicelib.core.statuses --js", file=sys.stderr)
        return 2
    sys.stdout.write(javascript())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
