"""The embedded SES reads a raw message's sender and recipients from its headers alone
(devstack.moto_messaging): the same values as parsing the whole MIME message, whatever the message."""

from __future__ import annotations

import email
import email.parser
from email.message import EmailMessage
from email.utils import formataddr

from hypothesis import given, settings
from hypothesis import strategies as st

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)
_LOCAL = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,15}", fullmatch=True)
_ADDRESS = st.builds(lambda local, name: formataddr((name, f"{local}@example.org")), _LOCAL, _TEXT)


@settings(max_examples=80, deadline=None)
@given(
    to=st.lists(_ADDRESS, min_size=1, max_size=3),
    cc=st.lists(_ADDRESS, max_size=2),
    bcc=st.lists(_ADDRESS, max_size=2),
    subject=_TEXT,
    body=_TEXT,
    html=st.none() | _TEXT,
    attachment=st.none() | st.binary(max_size=200),
)
def test_headers_alone_name_the_same_people(to, cc, bcc, subject, body, html, attachment) -> None:
    message = EmailMessage()
    message["From"] = formataddr(("LiveDrop", "no-reply@example.org"))
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if bcc:
        message["Bcc"] = ", ".join(bcc)
    message["Subject"] = subject
    message.set_content(body)
    if html is not None:
        message.add_alternative(f"<p>{html}</p>", subtype="html")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="a.bin")
    raw = message.as_string()

    whole = email.message_from_string(raw)
    headers = email.parser.HeaderParser().parsestr(raw)
    for name in ("FROM", "TO", "CC", "BCC"):
        assert (name in headers) == (name in whole)
        assert headers[name] == whole[name]
