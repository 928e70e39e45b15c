"""`make bench-publish`: the figures of the last `make bench` (bench/results/, not tracked) become the
published ones: bench/published/latest.{json,md} and latency.png, and the table of docs/benchmarks.md
between its `<!-- bench:begin -->` and `<!-- bench:end -->` markers. `make bench` alone never touches tracked files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PUBLISHED = ROOT / "bench" / "published"
FILES = ("latest.json", "latest.md", "latency.png")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


PAGE = ROOT / "docs" / "benchmarks.md"


def publish(results: Path = RESULTS, published: Path = PUBLISHED, page: Path = PAGE) -> None:
    """Copy the last run's summary files and put its table into the benchmarks page."""
    missing = [name for name in FILES[:2] if not (results / name).exists()]
    if missing:
        raise SystemExit(f"no benchmark run to publish ({', '.join(missing)} missing): run `make bench` first")
    published.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if not (results / name).exists():
            continue
        if name.endswith(".png"):
            shutil.copyfile(results / name, published / name)
        else:
            (published / name).write_text(_local((results / name).read_text()))
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{page.name} has no {BEGIN} ... {END} section to fill")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    table = _local((results / "latest.md").read_text()).strip()
    page.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"published {', '.join(FILES)} to {published} and the table to {page}")


def _local(text: str) -> str:
    """The run's text without this checkout's location (the profiles name processes by their command
    line): published files say `.venv/bin/python`, not where the repository was on the machine."""
    return text.replace(f"{ROOT}/", "")


if __name__ == "__main__":
    publish()
    sys.exit(0)
