"""The one stock-change coalescing rule (chalicelib.core.coalescing), and the web page's generated copy of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core import coalescing

ROOT = Path(__file__).resolve().parents[2]
changes = st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 5)), max_size=30).map(
    lambda pairs: [(key, drop, at) for key, (drop, at) in enumerate(pairs)]
)


@given(changes)
def test_of_each_drop_exactly_the_newest_change_is_kept_and_a_tie_goes_to_the_later(batch) -> None:
    dropped = coalescing.superseded(batch)
    kept = [c for c in batch if c[0] not in dropped]
    assert sorted(drop for _, drop, _ in kept) == sorted({drop for _, drop, _ in batch})
    for key, drop, at in kept:
        same = [c for c in batch if c[1] == drop]
        newest = max(c[2] for c in same)
        assert at == newest and key == max(k for k, _, t in same if t == newest)


@given(changes)
def test_the_rule_applied_one_change_at_a_time_keeps_what_it_keeps_for_the_whole_batch(batch) -> None:
    # The web page applies `supersedes` frame by frame; the servers apply `superseded` to a batch.
    shown: dict[str, tuple[int, int]] = {}
    for key, drop, at in batch:
        if coalescing.supersedes(at, shown[drop][1] if drop in shown else None):
            shown[drop] = (key, at)
    dropped = coalescing.superseded(batch)
    assert {key for key, _ in shown.values()} == {c[0] for c in batch} - dropped


def test_the_web_page_reads_the_rule_generated_from_chalicelib() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "chalicelib.core.coalescing", "--js"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (ROOT / "web" / "js" / "coalescing.js").read_text(encoding="utf-8") == generated


def test_no_page_module_spells_the_rule_or_its_figures_again() -> None:
    for path in (ROOT / "web" / "js").rglob("*.js"):
        if path.name == "coalescing.js":
            continue
        code = path.read_text(encoding="utf-8")
        assert "_stockAt >= " not in code and "at >= known._stockAt" not in code, path
        assert f"- {coalescing.PUSHED_STOCK_KEPT_MS}" not in code, path
