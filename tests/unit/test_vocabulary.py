"""One definition of the event vocabulary: topology's filter policies, the consumers' dispatch, the
frames the server sends and the web client's names all come from chalicelib.schema.messages.

Imports only: no dev stack, no AWS call.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

from chalicelib.delivery import consumers, live_stock, payments
from chalicelib.schema import messages, topology
from chalicelib.schema.messages import DeliverKind, EventType, FrameType

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Words that are an event or frame name and, elsewhere, something else: a drop's status, an error code,
# a line entry's state, the error body's key. Any other name spelled outside chalicelib.schema.messages is a
# second definition.
HOMONYMS = {"sold_out", "drop_ended", "admitted", "error"}


def test_every_filter_policy_names_event_types() -> None:
    for spec in topology.QUEUES:
        assert all(EventType(name) for name in spec.event_types), spec.name
        assert len(set(spec.event_types)) == len(spec.event_types), spec.name


def test_each_queue_receives_exactly_the_events_its_consumer_handles() -> None:
    assert set(topology.NOTIFY.event_types) == set(consumers.HANDLED_EVENT_TYPES)
    assert set(topology.PAYMENTS.event_types) == set(payments.HANDLED_EVENT_TYPES)
    assert set(topology.LIVE_STOCK.event_types) == set(live_stock.HANDLED_EVENT_TYPES)
    # Live stock never shares a queue with the pushes people wait for.
    assert not set(topology.LIVE_STOCK.event_types) & set(topology.NOTIFY.event_types)
    # Events nobody handles are not routed anywhere: published, filtered out by every queue.
    routed = {name for spec in topology.QUEUES for name in spec.event_types}
    assert set(EventType) - routed == {EventType.DROP_SCHEDULED}


def test_the_consumers_and_payments_handle_event_type_members() -> None:
    handled = (
        *consumers.HANDLED_EVENT_TYPES,
        *payments.HANDLED_EVENT_TYPES,
        *messages.DROP_EVENTS,
        *messages.ORDER_EVENTS,
    )
    assert handled and all(isinstance(kind, EventType) for kind in handled)


def test_every_pushed_event_is_a_frame_type_of_the_same_name() -> None:
    for kind in (*messages.NOTIFY_EVENTS, *messages.LIVE_STOCK_EVENTS):
        assert FrameType(kind.value).name == kind.name


def test_no_event_frame_or_deliver_kind_is_spelled_outside_messages() -> None:
    names = {t.value for t in EventType} | {t.value for t in FrameType} | {k.value for k in DeliverKind}
    sources = [*sorted((ROOT / "chalicelib").rglob("*.py")), ROOT / "app.py"]
    spelled = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}"
        for path in sources
        if path.name != "messages.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names - HOMONYMS
    ]
    assert spelled == []


def test_the_web_clients_names_are_the_generators_output() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "chalicelib.schema.messages", "--js"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert generated == messages.javascript()
    assert (ROOT / "web" / "js" / "events.js").read_text(encoding="utf-8") == generated


def test_the_generated_module_lists_every_member_once() -> None:
    lines = messages.javascript().splitlines()
    assert lines[0].startswith("// Generated from chalicelib/schema/messages.py")
    for member in [*EventType, *FrameType]:
        assert f'  "{member.name}": "{member.value}",' in lines
    assert lines.count("export const EventType = Object.freeze({") == 1
    assert lines.count("export const FrameType = Object.freeze({") == 1
