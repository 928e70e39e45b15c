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


_ADDRESSES = st.emails() | st.text(min_size=1, max_size=40).map(lambda local: f"{local}@example.com")


@settings(max_examples=60, deadline=None)
@given(
    address=_ADDRESSES,
    order_id=st.text(max_size=120),
    stop=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=300),
)
def test_the_direct_writer_reads_back_as_the_standard_librarys_message(address: str, order_id: str, stop: str) -> None:
    """Whatever the address, ids and links, the message reads back the same whichever writer wrote it;
    the direct one declines (None) anything that is not short printable ASCII."""
    headers = {
        "From": "no-reply@livedrop.example",
        "To": address,
        "Subject": "Your order is confirmed",
        "Date": "Mon, 07 Dec 2026 03:57:50 +0000",
        "Message-ID": "<1.2.3@livedrop.example>",
        "List-Unsubscribe": f"<https://api.example/unsubscribe?token={stop}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    text = f"Payment went through: your order {order_id} is confirmed.\n\nStop these e-mails: {stop}\n"
    html = f'<p>your order {order_id}</p><p><a href="{stop}">Stop these e-mails</a></p>'
    direct = mailer.plain_mime(headers, text, html)
    # (A line break in a body only starts another line.)
    printable = all(" " <= c <= "~" for c in address + order_id.replace("\n", "") + stop)
    assert (direct is not None) == printable
    if direct is None:
        return
    ours = message_from_bytes(direct, policy=policy.default)
    theirs = message_from_bytes(mailer._mime(headers, text, html), policy=policy.default)
    for name in headers:
        # (The standard library folds a long header before its value; unfolded, the values are equal.)
        assert str(ours[name]) == str(theirs[name]).strip(), name
    assert ours.get_content_type() == theirs.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        mine, standard = (m.get_body(preferencelist=(kind,)) for m in (ours, theirs))
        assert mine.get_content().replace("\r\n", "\n") == standard.get_content().replace("\r\n", "\n")
