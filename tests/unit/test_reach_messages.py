"""What an e-mail carries (RFC 8058's one-click unsubscribe headers, links, never a token of the
draw) and the unsubscribe tokens: signed, one switch each, refused once altered."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.errors import InvalidUnsubscribeLinkError
from chalicelib.delivery import mailer
from chalicelib.domain import preferences
from chalicelib.schema.messages import Envelope


def parsed(email: mailer.Email):
    return message_from_bytes(email.raw, policy=policy.default)


def test_an_email_carries_one_click_unsubscribe_and_a_text_and_an_html_part() -> None:
    event = Envelope.new("ev-1", "draw_won", 1_800_000_000_000, {"drop_id": "dr_1", "admission_expires_at": "soon"})
    message = parsed(mailer.compose(event, "u_1", "fan@example.com"))
    assert message["To"] == "fan@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"]).strip("<>")
    token = link.partition("?token=")[2]
    assert preferences.read_token(token) == ("u_1", "email", "draw_won")
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "#/drop/dr_1" in text and link in text
    assert "#/drop/dr_1" in html


def test_a_token_names_one_user_and_event_and_reads_back() -> None:
    for kind in ("drop_started", "order_confirmed", "draw_won"):
        assert preferences.read_token(preferences.unsubscribe_token("u_2", kind)) == ("u_2", "email", kind)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_a_token_altered_anywhere_is_refused(position: int, replacement: str) -> None:
    token = preferences.unsubscribe_token("u_3", "drop_started")
    at = position % len(token)
    altered = token[:at] + replacement + token[at + 1 :]
    if altered == token:
        return
    with pytest.raises(InvalidUnsubscribeLinkError):
        preferences.read_token(altered)
