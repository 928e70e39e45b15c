"""The one stock-change coalescing rule, for the stream, the live-stock consumer and the web page.

Viewers only need a drop's newest stock. So of the stock changes of one drop, the newest supersedes the
others: the one seen at the latest time, and of changes seen at the same time, the one that came last.
A drop's viewers get at most one stock push per WINDOW_MS, showing the newest stock then.

- chalicelib.delivery.events applies it to a stream batch (time: the record's place in the batch), so a rush of
  orders publishes one stock_changed per drop per batch;
- chalicelib.delivery.live_stock applies it to a queue batch (time: the event's occurred_at_ms) and, through its
  marker row, across batches and Lambdas within WINDOW_MS;
- the web page applies it to the frames and reads it sees: web/js/coalescing.js, which
  `python -m chalicelib.core.coalescing --js` writes from this module (a test fails when the two differ).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)

# A drop's viewers get at most one stock push per window (about 4 a second in a rush).
WINDOW_MS = 250
# How long the page keeps a pushed stock over the stock of a read it makes afterwards: the read may be
# served from before the push (the drop cache), and the next push comes within WINDOW_MS anyway.
PUSHED_STOCK_KEPT_MS = 1500


def supersedes(at: int | float, known_at: int | float | None) -> bool:
    """Whether a change of a drop seen at `at` replaces the one known from `known_at` (arriving later)."""
    return known_at is None or at >= known_at


def superseded(changes: Iterable[tuple[Key, str, int | float]]) -> set[Key]:
    """Of `changes` (key, drop id, time) in arrival order, the keys a newer change of the same drop supersedes."""
    newest: dict[str, tuple[int | float, Key]] = {}
    dropped: set[Key] = set()
    for key, drop_id, at in changes:
        known = newest.get(drop_id)
        if supersedes(at, known[0] if known else None):
            if known is not None:
                dropped.add(known[1])
            newest[drop_id] = (at, key)
        else:
            dropped.add(key)
    return dropped


# --- the web page's copy -------------------------------------------------------------------------------
JS_HEADER = "// Generated from chalicelib/coalescing.py by `python -m chalicelib.core.coalescing --js`: do not edit."


def javascript() -> str:
    """web/js/coalescing.js: the rule and its figures as an ES module."""
    return "\n".join(
        [
            JS_HEADER,
            f"export const WINDOW_MS = {WINDOW_MS};",
            f"export const PUSHED_STOCK_KEPT_MS = {PUSHED_STOCK_KEPT_MS};",
            "/** Whether a stock change seen at `at` replaces the one known from `knownAt` (arriving later). */",
            "export const supersedes = (at, knownAt) => knownAt == null || at >= knownAt;",
            "",
        ]
    )


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["--js"]:
        print("usage: python -m chalicelib.core.coalescing --js", file=sys.stderr)
        return 2
    sys.stdout.write(javascript())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
