"""The embedded SES takes a raw message's sender and recipients from its headers, as SES does."""

from __future__ import annotations

import json
import urllib.request
import uuid
from email.message import EmailMessage

import pytest
from botocore.exceptions import ClientError

from chalicelib.core.config import get_settings
from devstack.identity import aws_client


def _raw(sender: str, to: str, cc: str, bcc: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Cc"], message["Bcc"] = sender, to, cc, bcc
    message["Subject"] = "Ünïcode süßject"
    message.set_content("the text")
    message.add_alternative("<p>the page</p>", subtype="html")
    message.add_attachment(b"\x00\x01" * 500, maintype="application", subtype="octet-stream", filename="a.bin")
    return message.as_bytes()


def test_recipients_come_from_the_headers_and_an_unverified_sender_is_refused(messaging_endpoint) -> None:
    ses = aws_client("ses", messaging_endpoint)
    domain = get_settings().email_domain
    tag = uuid.uuid4().hex[:8]
    to, cc, bcc = f"Ann <ann-{tag}@example.org>", f"bo-{tag}@example.org", f"Cy Ü <cy-{tag}@example.org>"
    sent = ses.send_raw_email(RawMessage={"Data": _raw(f"LiveDrop <no-reply@{domain}>", to, cc, bcc)})

    with urllib.request.urlopen(f"{messaging_endpoint}/_devstack/ses/sent", timeout=10) as answer:  # noqa: S310
        found = [m for m in json.loads(answer.read()) if m["message_id"] == sent["MessageId"]]
    assert len(found) == 1
    assert [d.rsplit("<", 1)[-1].rstrip(">") for d in found[0]["destinations"]] == [
        f"ann-{tag}@example.org",
        f"bo-{tag}@example.org",
        f"cy-{tag}@example.org",
    ]
    assert "the page" in found[0]["raw"] and "a.bin" in found[0]["raw"]  # kept whole

    with pytest.raises(ClientError) as refused:
        ses.send_raw_email(RawMessage={"Data": _raw("someone@not-verified.example", to, cc, bcc)})
    assert refused.value.response["Error"]["Code"] == "MessageRejected"
