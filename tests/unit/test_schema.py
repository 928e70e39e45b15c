"""The schema's stream tables are the topology's stream sources (the tables themselves, as the dev stack
creates them: tests/devstack/test_schema.py)."""

from __future__ import annotations

from chalicelib.schema import models, topology


def test_every_stream_source_table_has_a_stream() -> None:
    stream_tables = {m.Meta.table_name for m in models.STREAM_MODELS}
    for source in topology.STREAM_SOURCES:
        assert models.table_spec  # the spec builder is what infra reads too
        assert any(name.endswith(source.table) for name in stream_tables), source
