"""The function table (chalicelib.schema.functions) against what it describes: app.py's functions, the models'
tables and indexes, and the event sources of chalicelib.schema.topology."""

from __future__ import annotations

import pytest

import app
from chalicelib.schema import models, topology
from chalicelib.schema.functions import ACCESS, event_sources, index, table
from devstack.environments import DEFAULT_CONCURRENCY

FUNCTION_NAMES = {value for key, value in vars(topology.Fn).items() if key.isupper()}


def _tables_and_indexes() -> set[str]:
    names: set[str] = set()
    for model in models.ALL_MODELS:
        name = table(model)
        names.add(name)
        names |= {f"{name}/{i.Meta.index_name}" for i in model._indexes.values()}
    return names


def test_the_table_sizes_and_grants_exactly_the_functions_app_py_defines() -> None:
    chalice = app.app
    defined = {f.name for f in chalice.pure_lambda_functions} | {e.name for e in chalice.event_sources}
    defined |= {h.handler_string.split(".", 1)[1] for h in chalice.websocket_handlers.values()}
    defined |= {topology.Fn.API} if chalice.routes else set()
    assert defined == set(ACCESS) == FUNCTION_NAMES


@pytest.mark.parametrize("name", sorted(ACCESS))
def test_every_grant_names_a_real_table_or_index(name: str) -> None:
    known = _tables_and_indexes()
    access = ACCESS[name]
    for granted in (*access.read, *access.write, *access.scan):
        assert granted in known, (
            f"{name} is granted {granted!r}, which is no table or index of chalicelib.schema.models"
        )
    # Writes and scans are of whole tables: an index is only ever read.
    assert not [g for g in (*access.write, *access.scan) if "/" in g], name


def test_grants_are_spelled_through_the_models_so_a_wrong_name_cannot_be_written() -> None:
    assert table(models.Drop) == "Drops" and index(models.Drop.by_status) == "Drops/by_status"
    with pytest.raises(ValueError, match="not an index"):
        index(models.Drop)


def test_every_event_source_invokes_a_function_of_the_table_and_each_stream_is_a_table() -> None:
    for source in (*topology.QUEUE_SOURCES, *topology.STREAM_SOURCES):
        assert source.handler in ACCESS, source
        assert source in event_sources(source.handler)
    assert {s.table for s in topology.STREAM_SOURCES} == {table(m) for m in models.STREAM_MODELS}


def test_the_dev_stack_sizes_each_function_from_the_table() -> None:
    assert {name: access.dev_concurrency for name, access in ACCESS.items()} == DEFAULT_CONCURRENCY
    assert all(limit >= 1 for limit in DEFAULT_CONCURRENCY.values())
