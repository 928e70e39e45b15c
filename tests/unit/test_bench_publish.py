"""`make bench` writes only to bench/results/ (ignored); publishing to docs/benchmarks.md is its own step."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench import publish

ROOT = Path(__file__).resolve().parents[2]


def test_bench_results_are_not_tracked_and_are_ignored() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "bench/results"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/results/latest.json"], cwd=ROOT)
    assert ignored.returncode == 0


def test_publishing_copies_the_run_and_fills_only_the_readme_section(tmp_path: Path) -> None:
    results, published, readme = tmp_path / "results", tmp_path / "published", tmp_path / "README.md"
    results.mkdir()
    (results / "latest.json").write_text("{}\n")
    (results / "latest.md").write_text("| benchmark | figure | value |\n|---|---|---|\n| calls | per order | 6.5 |\n")
    readme.write_text("# Title\n\nbefore\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\nafter\n")
    publish.publish(results, published, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n<!-- bench:begin -->\n| benchmark |")
    assert "old table" not in text and "| calls | per order | 6.5 |" in text
    assert text.endswith("<!-- bench:end -->\nafter\n")
    assert (published / "latest.md").read_text() == (results / "latest.md").read_text()


def test_published_figures_do_not_say_where_the_repository_was(tmp_path: Path) -> None:
    results, published, page = tmp_path / "results", tmp_path / "published", tmp_path / "benchmarks.md"
    results.mkdir()
    process = f'process 7:\\"{publish.ROOT}/.venv/bin/python -m bench.orders\\"'
    (results / "latest.json").write_text(f'{{"top": {{"{process}": 1.1}}}}\n')
    (results / "latest.md").write_text(f"| orders | {publish.ROOT}/bench | 1 |\n")
    page.write_text("<!-- bench:begin -->\n<!-- bench:end -->\n")
    publish.publish(results, published, page)
    for text in ((published / "latest.json").read_text(), (published / "latest.md").read_text(), page.read_text()):
        assert str(publish.ROOT) not in text
    assert json.loads((published / "latest.json").read_text()) == {
        "top": {'process 7:".venv/bin/python -m bench.orders"': 1.1}
    }


def test_publishing_without_a_run_says_so(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:begin -->\n<!-- bench:end -->\n")
    with pytest.raises(SystemExit, match="make bench"):
        publish.publish(tmp_path / "none", tmp_path / "published", readme)
    assert readme.read_text() == "<!-- bench:begin -->\n<!-- bench:end -->\n"


def test_the_benchmarks_page_has_the_section_publishing_fills() -> None:
    text = publish.PAGE.read_text()
    assert text.index(publish.BEGIN) < text.index(publish.END)
