"""docs/architecture.md is the one map of the system: its tables of tables, streams, functions, queues,
topics and schedules list exactly what the code defines, in both directions, so the page cannot drift.

The page's format: under a heading with that title (numbered or not), a markdown table whose first column
holds one name in backticks per row. The code is found by what it defines (ALL_MODELS, QUEUES, ACCESS,
...), wherever under chalicelib/ or infra/ that definition lives, so modules may move without this test.
"""

from __future__ import annotations

import ast
import importlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.schema.topology import Fn

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
CODE = ("chalicelib", "infra")
NAME = re.compile(r"`([^`]+)`")


# --- the page -----------------------------------------------------------------------------------
def table(title: str) -> list[dict[str, str]]:
    """The rows of the first table under the heading `title`, as header -> cell."""
    lines = DOC.read_text().splitlines()
    heading = re.compile(rf"^#{{2,4}} (?:\d+\. )?{re.escape(title)}$")
    starts = [i for i, line in enumerate(lines) if heading.match(line)]
    assert len(starts) == 1, f"docs/architecture.md needs exactly one heading {title!r}"
    rows: list[list[str]] = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table under {title!r}"
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row, strict=True)) for row in body]


def names(cell: str) -> list[str]:
    return NAME.findall(cell)


def first_column(title: str) -> list[str]:
    """The one backticked name in each row's first cell."""
    found = []
    for row in table(title):
        cell = next(iter(row.values()))
        match = re.fullmatch(r"`([^`]+)`", cell)
        assert match, f"{title}: the first cell {cell!r} is not one `name`"
        found.append(match.group(1))
    assert len(found) == len(set(found)), f"{title}: a name is listed twice: {found}"
    return found


# --- the code -----------------------------------------------------------------------------------
@cache
def defined(name: str) -> Any:
    """The value of the module-level `name` that exactly one module under chalicelib/ or infra/ assigns
    (a literal is read from the source, anything else from the imported module)."""
    definers = []
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                if isinstance(node, ast.Assign | ast.AnnAssign) and any(
                    isinstance(t, ast.Name) and t.id == name for t in targets
                ):
                    definers.append((path, node.value))
    where = [str(path.relative_to(ROOT)) for path, _ in definers]
    assert len(definers) == 1, f"{name} must be defined by exactly one module under {CODE}, found {where}"
    path, value = definers[0]
    try:
        return ast.literal_eval(value)  # type: ignore[arg-type]
    except ValueError:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        return getattr(importlib.import_module(module), name)


def table_name(model: Any) -> str:
    return str(model.Meta.table)  # the logical name, without the stage's prefix


def app_functions() -> dict[str, str]:
    """Every Lambda function app.py registers -> how it is triggered (routes are the one REST function)."""
    import app as app_module

    app = app_module.app
    found = {f.name: "lambda" for f in app.pure_lambda_functions}
    found |= {source.name: "schedule" for source in app.event_sources}
    found |= {config.name: "websocket" for config in app.websocket_handlers.values()}
    if app.routes:
        found[defined("API_HANDLER")] = "rest"
    return found


# --- the checks ---------------------------------------------------------------------------------
def test_the_tables_are_exactly_the_models_tables() -> None:
    models = {table_name(model) for model in defined("ALL_MODELS")}
    assert set(first_column("Data")) == models


def test_every_table_a_function_is_granted_is_on_the_map() -> None:
    listed = set(first_column("Data"))
    granted = {
        grant.split("/", 1)[0]
        for access in defined("ACCESS").values()
        for grant in (*access.read, *access.write, *access.scan)
    }
    assert granted <= listed, granted - listed


def test_the_streams_are_exactly_the_stream_sources_and_the_models_with_a_stream() -> None:
    sources = {source.table: source.handler for source in defined("STREAM_SOURCES")}
    assert set(sources) == {table_name(model) for model in defined("STREAM_MODELS")}
    rows = {re.fullmatch(r"`([^`]+)`", row["stream"]).group(1): row for row in table("Streams")}  # type: ignore[union-attr]
    assert set(first_column("Streams")) == set(sources)
    for stream, row in rows.items():
        assert names(row["read by"]) == [sources[stream]], stream


def test_the_functions_are_exactly_those_app_py_registers_and_those_granted_access() -> None:
    listed = set(first_column("Functions"))
    assert listed == set(app_functions())
    assert listed == set(defined("ACCESS"))


def test_each_function_is_triggered_as_the_map_says() -> None:
    triggers = {row["function"].strip("`"): row["trigger"] for row in table("Functions")}
    kinds = app_functions()
    for source in defined("QUEUE_SOURCES"):
        assert f"SQS `{source.queue}`" in triggers[source.handler], source
    for stream in defined("STREAM_SOURCES"):
        assert stream.table in triggers[stream.handler], stream
    for function, kind in kinds.items():
        if kind == "schedule":
            assert "schedule" in triggers[function], function
        if kind == "websocket":
            assert "API Gateway WebSocket" in triggers[function], function
        if kind == "rest":
            assert "API Gateway REST" in triggers[function], function
    assert "EventBridge Scheduler" in triggers[str(Fn.DROP_LIFECYCLE)]


def test_the_queues_are_exactly_the_topology_and_the_stream_failures_queue() -> None:
    queues = {spec.name: spec for spec in defined("QUEUES")}
    failures = defined("STREAM_FAILURES_QUEUE")
    assert set(first_column("Queues")) == {*queues, failures}
    consumers = {source.queue: source.handler for source in defined("QUEUE_SOURCES")}
    for row in table("Queues"):
        name = row["queue"].strip("`")
        if name == failures:
            assert not names(row["dead-letter queue"]) and not names(row["consumer"])
            continue
        assert names(row["dead-letter queue"]) == [queues[name].dlq_name], name
        assert names(row["consumer"]) == [consumers[name]], name


def test_the_topics_and_what_the_events_topic_delivers_to() -> None:
    events, alarms = defined("EVENTS_TOPIC"), defined("ALARM_TOPIC")
    assert set(first_column("Topics")) == {events, alarms}
    row = next(row for row in table("Topics") if row["topic"] == f"`{events}`")
    subscribed = {spec.name for spec in defined("QUEUES") if spec.event_types}
    assert set(names(row["delivers to"])) == subscribed


def test_the_schedules_target_the_scheduled_functions() -> None:
    rows = table("Schedules")
    targets = [target for row in rows for target in names(row["target"])]
    scheduled = {name for name, kind in app_functions().items() if kind == "schedule"}
    assert set(targets) == {*scheduled, str(Fn.DROP_LIFECYCLE)}
    lifecycle = next(row for row in rows if names(row["target"]) == [str(Fn.DROP_LIFECYCLE)])
    assert f"`{defined('SCHEDULER_GROUP')}`" in lifecycle["when"]
