"""What each user wants to hear, and on which channel: per-channel, per-event switches.

A user's row in NotificationPreferences holds one attribute per switch (`email_drop_started`, ...);
a switch never set takes its default. A change sets only the switches it names, in one UpdateItem,
so two changes at once (a PUT and an unsubscribe link) never undo each other. The unsubscribe links
of e-mails carry a token signed with the stage's `unsubscribe` key: it names the user, the channel
and the event, and turns that one switch off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import cache
from chalicelib.core.config import get_settings
from chalicelib.core.errors import InvalidUnsubscribeLinkError
from chalicelib.core.validation import format_time
from chalicelib.schema import signing
from chalicelib.schema.commands import EMAIL_EVENTS, PUSH_EVENTS, NotificationPreferences
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import NotificationPreference

EMAIL = "email"
WEB_PUSH = "web_push"
CHANNELS: dict[str, tuple[str, ...]] = {EMAIL: EMAIL_EVENTS, WEB_PUSH: PUSH_EVENTS}
# Following a creator is asking to hear of their drops; an order's and a draw's news are the user's own.
DEFAULTS: dict[str, dict[str, bool]] = {channel: dict.fromkeys(kinds, True) for channel, kinds in CHANNELS.items()}
_KEY_NAME = "unsubscribe"
# The key and the Settings it was read under: other Settings (a test's, a dev stack provisioned anew)
# mean another table, so the key is read again.
_cached_key: list[tuple[Any, bytes]] = []
cache.remember(_cached_key.clear)


def _attribute(channel: str, kind: str) -> Any:
    return getattr(NotificationPreference, f"{channel}_{kind}")


def view(row: NotificationPreference | None) -> dict[str, Any]:
    """Every switch of a user (stored, else the default) as GET answers it."""
    switches: dict[str, Any] = {}
    for channel, kinds in CHANNELS.items():
        switches[channel] = {}
        for kind in kinds:
            stored = None if row is None else getattr(row, f"{channel}_{kind}")
            switches[channel][kind] = DEFAULTS[channel][kind] if stored is None else bool(stored)
    switches["updated_at"] = format_time(row.updated_at) if row is not None and row.updated_at else None
    return switches


def _row(user_id: str) -> NotificationPreference | None:
    try:
        return NotificationPreference.get(user_id, consistent_read=True)
    except DoesNotExist:
        return None


def get(user_id: str) -> dict[str, Any]:
    """A user's switches."""
    return view(_row(user_id))


def update(user_id: str, change: NotificationPreferences) -> dict[str, Any]:
    """Set the switches `change` names (the others keep their value); answers every switch."""
    actions = [
        _attribute(channel, kind).set(bool(value))
        for channel, given in ((EMAIL, change.email), (WEB_PUSH, change.web_push))
        for kind, value in (given or {}).items()
    ]
    row = NotificationPreference(user_id=user_id)
    row.update(actions=[*actions, NotificationPreference.updated_at.set(now_ms())])
    return view(row)


def set_switch(user_id: str, channel: str, kind: str, value: bool) -> None:
    """Turn one switch on or off."""
    row = NotificationPreference(user_id=user_id)
    row.update(actions=[_attribute(channel, kind).set(value), NotificationPreference.updated_at.set(now_ms())])


def note_push_subscription(user_id: str) -> None:
    """The user has a push subscription: senders look for their subscriptions from now on."""
    NotificationPreference(user_id=user_id).update(actions=[NotificationPreference.has_push.set(True)])


def of_users(user_ids: Iterable[str]) -> dict[str, NotificationPreference | None]:
    """The rows of several users at once (BatchGetItem); None for a user who never changed a switch."""
    wanted = list(dict.fromkeys(user_ids))
    found: dict[str, NotificationPreference | None] = dict.fromkeys(wanted)
    if wanted:
        for row in NotificationPreference.batch_get(wanted):
            found[str(row.user_id)] = row
    return found


def wants(row: NotificationPreference | None, channel: str, kind: str) -> bool:
    """Whether a user (their row, or None) wants `kind` on `channel`."""
    if kind not in CHANNELS[channel]:
        return False
    stored = None if row is None else getattr(row, f"{channel}_{kind}")
    return DEFAULTS[channel][kind] if stored is None else bool(stored)


# --- unsubscribe links ----------------------------------------------------------------------------
def _key() -> bytes:
    """The stage's unsubscribe signing key: made once by whoever needs it first, then kept."""
    settings = get_settings()
    if _cached_key and _cached_key[0][0] is settings:
        return _cached_key[0][1]
    _cached_key[:] = [(settings, signing.stage_key(_KEY_NAME))]
    return _cached_key[0][1]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsubscribe_token(user_id: str, kind: str, channel: str = EMAIL) -> str:
    """A token that turns off `kind` on `channel` for the user; it does not expire (links in old
    e-mails keep working) and changes nothing but that switch."""
    payload = _b64(json.dumps([user_id, channel, kind], separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(), payload.encode(), hashlib.sha256).digest()[:16])
    return f"{payload}.{signature}"


def read_token(token: str | None) -> tuple[str, str, str]:
    """(user_id, channel, kind) of a token this stage signed, else InvalidUnsubscribeLinkError."""
    payload, _, signature = (token or "").partition(".")
    expected = _b64(hmac.new(_key(), payload.encode(), hashlib.sha256).digest()[:16])
    if not payload or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise InvalidUnsubscribeLinkError("this unsubscribe link is not valid")
    try:
        user_id, channel, kind = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidUnsubscribeLinkError("this unsubscribe link is not valid") from None
    if channel not in CHANNELS or kind not in CHANNELS[channel]:
        raise InvalidUnsubscribeLinkError("this unsubscribe link is not valid")
    return str(user_id), channel, kind


def describe_unsubscribe(token: str | None) -> dict[str, Any]:
    """What a POST of this token will do, and whether the switch is on now."""
    user_id, channel, kind = read_token(token)
    return {"channel": channel, "event": kind, "enabled": wants(_row(user_id), channel, kind)}


def unsubscribe(token: str | None) -> dict[str, Any]:
    """Turn off the switch the token names (again: no change)."""
    user_id, channel, kind = read_token(token)
    set_switch(user_id, channel, kind, False)
    return {"channel": channel, "event": kind, "enabled": False}
