"""`GET /_dev/emails?to=ADDRESS` (the dev stack only): the e-mails the embedded SES sent, newest first.

SES has no API that lists what it sent; the embedded AWS's messaging process answers
`/_devstack/ses/sent` with the raw messages (devstack.moto_backend), and this module reads them as a
person would: sender, recipients, subject, the unsubscribe headers and the text.
"""

from __future__ import annotations

import json
import urllib.request
from email import message_from_string, policy
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from chalicelib.core.config import get_settings

PATH = "/_dev/emails"
_TIMEOUT_SECONDS = 10


def sent_emails(to: str | None = None) -> list[dict[str, Any]]:
    """Every e-mail sent (to `to` only, when given), newest first."""
    url = f"{get_settings().aws_endpoint_url}/_devstack/ses/sent"
    with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as answer:  # noqa: S310 - the local embedded AWS
        sent = json.loads(answer.read())
    wanted = (to or "").strip().lower()
    found = []
    for item in reversed(sent):
        message = cast(EmailMessage, message_from_string(item["raw"], policy=policy.default))
        recipients = [str(address).lower() for address in item["destinations"]]
        if wanted and not any(wanted == r or r.endswith(f"<{wanted}>") for r in recipients):
            continue
        text = message.get_body(preferencelist=("plain",))
        found.append(
            {
                "message_id": item["message_id"],
                "from": item["source"],
                "to": item["destinations"],
                "subject": str(message["Subject"]),
                "date": str(message["Date"]),
                "list_unsubscribe": message["List-Unsubscribe"] and str(message["List-Unsubscribe"]),
                "list_unsubscribe_post": message["List-Unsubscribe-Post"] and str(message["List-Unsubscribe-Post"]),
                "text": text.get_content() if text is not None else "",
            }
        )
    return found


def answer(target: str) -> tuple[int, bytes]:
    """The status and JSON body of a GET of `target` (path and query)."""
    to = parse_qs(urlsplit(target).query).get("to", [None])[0]
    return 200, json.dumps({"items": sent_emails(to)}).encode()
