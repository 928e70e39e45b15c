"""E-mail through SES: one adapter for the embedded SES of the dev stack and SES in AWS.

Messages go out as raw MIME (SendRawEmail), because each carries the one-click unsubscribe of RFC
8058: a `List-Unsubscribe` header with the user's signed link on the API and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`, which mail providers turn into an "Unsubscribe" button.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from urllib.parse import quote

from chalicelib.core import aws
from chalicelib.core.config import get_settings
from chalicelib.domain import preferences
from chalicelib.schema.messages import Envelope
from chalicelib.schema.messages import EventType as Event
from chalicelib.schema.messages import FrameType as Frame

# Each e-mail names what it is about and where to act on it; never a token or a position.
_SUBJECTS = {
    Event.DROP_STARTED.value: "A drop you follow just started",
    Event.ORDER_CONFIRMED.value: "Your order is confirmed",
    Frame.DRAW_WON.value: "You won the draw: your unit is waiting",
}
_LINES = {
    Event.DROP_STARTED.value: "A drop by a creator you follow is live now. Stock is limited.",
    Event.ORDER_CONFIRMED.value: "Payment went through: your order {order_id} is confirmed.",
    Frame.DRAW_WON.value: "You were drawn. Buy your unit before {expires}, or it goes to the next in line.",
}
_ACTIONS = {
    Event.DROP_STARTED.value: ("See the drop", "#/drop/{drop_id}"),
    Event.ORDER_CONFIRMED.value: ("See your orders", "#/orders"),
    Frame.DRAW_WON.value: ("Buy it now", "#/drop/{drop_id}"),
}
EMAIL_EVENTS = tuple(_SUBJECTS)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    raw: bytes


def unsubscribe_url(user_id: str, kind: str) -> str:
    """The one-click link that turns `kind` e-mails off for the user."""
    token = preferences.unsubscribe_token(user_id, kind)
    return f"{get_settings().public_url}/unsubscribe?token={quote(token)}"


def compose(event: Envelope, user_id: str, address: str) -> Email:
    """The e-mail of `event` for one user: plain text and HTML, with the unsubscribe headers."""
    settings = get_settings()
    kind = event.event_type
    fields = {
        "order_id": event.data.get("order_id", ""),
        "drop_id": event.data.get("drop_id", ""),
        "expires": event.data.get("admission_expires_at", "your purchase window closes"),
    }
    line = _LINES[kind].format(**fields)
    label, path = _ACTIONS[kind]
    link = settings.web_url + path.format(**fields)
    stop = unsubscribe_url(user_id, kind)
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = address
    message["Subject"] = _SUBJECTS[kind]
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.email_from.rpartition("@")[2] or None)
    message["List-Unsubscribe"] = f"<{stop}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(f"{line}\n\n{label}: {link}\n\nStop these e-mails: {stop}\n")
    message.add_alternative(
        f'<p>{escape(line)}</p><p><a href="{escape(link)}">{escape(label)}</a></p>'
        f'<p style="font-size:small"><a href="{escape(stop)}">Stop these e-mails</a></p>',
        subtype="html",
    )
    return Email(address, _SUBJECTS[kind], message.as_bytes())


def send(email: Email) -> str:
    """Send one e-mail through SES in the stage's configuration set; SES's message id."""
    settings = get_settings()
    options = {"ConfigurationSetName": settings.ses_configuration_set} if settings.ses_configuration_set else {}
    sent = aws.client("ses").send_raw_email(
        Source=settings.email_from, Destinations=[email.to], RawMessage={"Data": email.raw}, **options
    )
    return str(sent["MessageId"])
