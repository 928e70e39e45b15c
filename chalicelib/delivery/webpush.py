"""Web Push: browsers' subscriptions, the stage's VAPID keys, and encrypted pushes to push services.

A push is RFC 8030 delivery of an RFC 8291 `aes128gcm` body encrypted to the subscription's keys,
with an RFC 8292 VAPID `Authorization: vapid t=...,k=...` header signed by the stage's key
(pywebpush, http_ece and py_vapid do the cryptography). The VAPID key pair is made once per stage,
by whichever function needs it first, and kept in a Secrets Manager secret; browsers subscribe with
its public half (GET /push/vapid-public-key). A push service that answers 404 or 410 has forgotten
the subscription: it is deleted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.core import aws, cache
from chalicelib.core.config import get_settings
from chalicelib.core.errors import InvalidRequestError
from chalicelib.domain import preferences
from chalicelib.schema.commands import PushSubscription
from chalicelib.schema.db import now_ms
from chalicelib.schema.models import WebPushSubscription

log = logging.getLogger("livedrop.webpush")

MAX_SUBSCRIPTIONS = 10  # browsers per user; the oldest goes when an eleventh subscribes
PUSH_TIMEOUT_SECONDS = 5
SENT, GONE, FAILED = "sent", "gone", "failed"
_keys: dict[str, Any] = {}
_keys_lock = threading.Lock()
cache.remember(_keys.clear)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(name: str, text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{name} must be base64url") from None


# --- subscriptions --------------------------------------------------------------------------------
def check_endpoint(endpoint: str) -> str:
    """A push service URL this stage may POST to: https to a named host (the local dev stage also
    takes http://127.0.0.1, where tests run their own push service)."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if get_settings().push_loopback and parts.scheme == "http" and host == "127.0.0.1":
        return endpoint
    if parts.scheme != "https" or not host or host == "localhost" or parts.username or parts.password:
        raise InvalidRequestError("endpoint must be an https URL of a push service")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return endpoint
    raise InvalidRequestError("endpoint must name its push service's host, not an IP address")


def _on_p256(point: bytes) -> bool:
    """Whether the point lies on the curve: a key that does not could be stored but never encrypted to."""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


def endpoint_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:40]


def subscribe(user_id: str, subscription: PushSubscription) -> dict[str, Any]:
    """Store a browser's subscription (the same endpoint again replaces it)."""
    endpoint = check_endpoint(subscription.endpoint)
    p256dh, auth = subscription.keys["p256dh"], subscription.keys["auth"]
    point = _unb64("keys.p256dh", p256dh)
    if len(point) != 65 or point[0] != 4 or not _on_p256(point):
        raise InvalidRequestError("keys.p256dh must be an uncompressed P-256 public key")
    if len(_unb64("keys.auth", auth)) != 16:
        raise InvalidRequestError("keys.auth must be 16 bytes")
    existing = sorted(WebPushSubscription.query(user_id), key=lambda row: int(row.created_at))
    mine = endpoint_id(endpoint)
    others = [row for row in existing if row.endpoint_id != mine]
    for stale in others[: max(0, len(others) - MAX_SUBSCRIPTIONS + 1)]:
        stale.delete()
    row = WebPushSubscription(
        user_id=user_id, endpoint_id=mine, endpoint=endpoint, p256dh=p256dh, auth=auth, created_at=now_ms()
    )
    row.save()
    preferences.note_push_subscription(user_id)
    return {"endpoint": endpoint, "subscription_id": mine}


def unsubscribe(user_id: str, endpoint: str) -> None:
    """Forget a browser's subscription (one never stored: nothing to do)."""
    WebPushSubscription(user_id=user_id, endpoint_id=endpoint_id(endpoint)).delete()


def subscriptions_of(user_id: str) -> list[WebPushSubscription]:
    return list(WebPushSubscription.query(user_id))


# --- the stage's VAPID keys -----------------------------------------------------------------------
def _vapid() -> Any:
    """The stage's VAPID key (py_vapid), read from its secret, made and stored there the first time."""
    settings = get_settings()
    found = _keys.get("vapid")
    if found is not None and found[0] is settings:
        return found[1]
    from py_vapid import Vapid

    with _keys_lock:
        if _keys.get("vapid", (None,))[0] is not settings:
            name = settings.vapid_secret_name
            client = aws.client("secretsmanager")
            try:
                pem = json.loads(client.get_secret_value(SecretId=name)["SecretString"])["private_key"]
            except client.exceptions.ResourceNotFoundException:
                made = Vapid()
                made.generate_keys()
                pem = made.private_pem().decode()
                try:
                    client.create_secret(Name=name, SecretString=json.dumps({"private_key": pem}))
                except client.exceptions.ResourceExistsException:
                    # Another function made it first: theirs is the stage's key.
                    pem = json.loads(client.get_secret_value(SecretId=name)["SecretString"])["private_key"]
            # Kept with the Settings it was read under: other Settings mean another secret.
            _keys["vapid"] = (settings, Vapid.from_pem(pem.encode()))
        return _keys["vapid"][1]


def public_key() -> str:
    """The stage's VAPID public key as browsers take it (applicationServerKey): base64url, uncompressed."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return _b64(_vapid().public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


# --- pushing --------------------------------------------------------------------------------------
def push(row: WebPushSubscription, payload: dict[str, Any], ttl: int) -> str:
    """Encrypt `payload` to one subscription and POST it: SENT, GONE (the subscription is deleted) or
    FAILED (the push service refused or could not be reached; nothing is retried)."""
    from pywebpush import WebPushException, webpush
    from requests import RequestException

    key = _vapid()
    info = {"endpoint": row.endpoint, "keys": {"p256dh": row.p256dh, "auth": row.auth}}
    subject = f"mailto:{get_settings().email_from}"
    try:
        webpush(
            info,
            json.dumps(payload, separators=(",", ":")),
            vapid_private_key=key,
            vapid_claims={"sub": subject},
            content_encoding="aes128gcm",
            ttl=ttl,
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except WebPushException as error:
        status = getattr(error.response, "status_code", None)
        if status in (404, 410):
            row.delete()
            return GONE
        log.warning("push to %s failed: %s", urlsplit(row.endpoint).hostname, status or error)
        return FAILED
    except RequestException as error:  # the push service is unreachable or slow
        log.warning("push to %s failed: %s", urlsplit(row.endpoint).hostname, type(error).__name__)
        return FAILED
    return SENT
