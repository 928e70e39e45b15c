"""Notification settings on the validation and preferences functions themselves: any body is applied
whole or refused with invalid_request and changes nothing (the API tier keeps a few HTTP examples)."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import InvalidRequestError
from chalicelib.core.validation import parse_command
from chalicelib.domain import preferences
from chalicelib.schema.commands import NotificationPreferences
from tests.unit.domain.shop import examples

EVENTS = ("drop_started", "order_confirmed", "draw_won")
ALL_ON = {"email": dict.fromkeys(EVENTS, True), "web_push": dict.fromkeys(EVENTS, True), "updated_at": None}

switch = st.one_of(st.booleans(), st.none(), st.integers(0, 1), st.text(max_size=3))
channel = st.dictionaries(st.sampled_from([*EVENTS, "sold_out", "Drop_Started"]), switch, max_size=4)
bodies = st.dictionaries(st.sampled_from(["email", "web_push", "sms"]), st.one_of(channel, st.booleans()), max_size=3)


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_a_change_is_applied_whole_or_refused_and_changes_nothing(body) -> None:
    user = uuid.uuid4().hex
    valid = all(
        name in ("email", "web_push")
        and isinstance(switches, dict)
        and all(kind in EVENTS and isinstance(value, bool) for kind, value in switches.items())
        for name, switches in body.items()
        if switches is not None
    )
    try:
        change = parse_command(json.dumps(body), NotificationPreferences)
        preferences.update(user, change)
    except InvalidRequestError:
        assert not valid
        assert preferences.get(user) == ALL_ON
        return
    assert valid
    stored = preferences.get(user)
    for name, switches in body.items():
        for kind, value in (switches or {}).items():
            assert stored[name][kind] is value
