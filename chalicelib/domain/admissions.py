"""Admission tokens: what a queue drop's admitted users and a draw's winners show POST /orders.

A token is `<payload>.<signature>`, both base64url: the payload names the drop, the user and the
expiry (epoch ms), the signature is HMAC-SHA256 of the payload under the stage's admission key. The
order path checks it without a read; the order's own transaction then checks that the user really
was admitted (their Admission row) and counts what they bought.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from chalicelib.core import cache
from chalicelib.core.config import get_settings
from chalicelib.core.errors import AdmissionExpiredError, AdmissionRequiredError
from chalicelib.schema import signing

_KEY_NAME = "admission"
_cached_key: list[bytes] = []


def _key() -> bytes:
    """LIVEDROP_ADMISSION_KEY when set (local runs), else the stage's signing key: made once by whoever
    needs it first (a conditional put), then read and kept for the life of the process."""
    settings = get_settings()
    if settings.admission_key:
        return settings.admission_key.encode()
    if not _cached_key:
        _cached_key.append(signing.stage_key(_KEY_NAME))
    return _cached_key[0]


@cache.remember
def forget_key() -> None:
    """Forget the kept key (the settings, and so the table it is read from, changed)."""
    _cached_key.clear()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str) -> str:
    return _b64(hmac.new(_key(), payload.encode("ascii"), hashlib.sha256).digest())


def issue_token(user_id: str, drop_id: str, expires_ms: int) -> str:
    """A token that admits `user_id` to order from `drop_id` until `expires_ms`."""
    payload = _b64(json.dumps({"d": drop_id, "u": user_id, "e": expires_ms}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(payload)}"


def verify_token(token: str | None, user_id: str, drop_id: str, now: int) -> int:
    """The token's expiry, if it admits `user_id` to `drop_id` now; 403 admission_required or admission_expired."""
    if not token:
        raise AdmissionRequiredError("this drop sells to admitted users only: send your admission_token")
    payload, _, signature = token.partition(".")
    if not payload or not token.isascii() or not hmac.compare_digest(_sign(payload).encode(), signature.encode()):
        raise AdmissionRequiredError("admission_token is not a token this API issued")
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise AdmissionRequiredError("admission_token is not a token this API issued") from None
    if not isinstance(claims, dict) or claims.get("d") != drop_id or claims.get("u") != user_id:
        raise AdmissionRequiredError("this admission_token is for another user or drop")
    expires = claims.get("e")
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise AdmissionRequiredError("admission_token is not a token this API issued")
    if expires <= now:
        raise AdmissionExpiredError("your admission has expired")
    return expires


def _fernet() -> Any:
    # Imported here: only the draw's entry listing needs it, and `import app` stays light for cold starts.
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_key() + b"/page-tokens").digest()))


def seal(text: str) -> str:
    """`text` encrypted and authenticated under the admission key (page tokens that name a user)."""
    return _fernet().encrypt(text.encode()).decode("ascii")


def unseal(token: str) -> str | None:
    """What `seal` sealed, or None for anything else."""
    from cryptography.fernet import InvalidToken

    try:
        return str(_fernet().decrypt(token.encode("ascii")).decode())
    except (InvalidToken, UnicodeError, ValueError):
        return None
