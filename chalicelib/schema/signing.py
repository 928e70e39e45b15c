"""The stage's signing keys (SigningKeys table): a key is made once by whoever needs it first, then kept.

Admission tokens and unsubscribe links each sign with a key of their own name; callers cache the bytes
for the life of the process.
"""

from __future__ import annotations

import secrets
import time

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.schema.models import SigningKey


def stage_key(name: str) -> bytes:
    """The key called `name`, made with a conditional put if no process made it before."""
    try:
        stored = SigningKey.get(name, consistent_read=True)
    except DoesNotExist:
        stored = SigningKey(name=name, secret=secrets.token_hex(32), created_at=int(time.time() * 1000))
        try:
            stored.save(SigningKey.name.does_not_exist())
        except PutError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            stored = SigningKey.get(name, consistent_read=True)  # another process made it first
    return bytes.fromhex(stored.secret)
