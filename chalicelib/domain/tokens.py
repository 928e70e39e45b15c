"""Cognito token verification against the user pool's JWKS (the WebSocket $connect and the dev stack's
REST authorizer share it, so both accept exactly what API Gateway's Cognito authorizer accepts)."""

from __future__ import annotations

import threading
from typing import Any

import jwt

from chalicelib.core import ports
from chalicelib.core.errors import UnauthorizedError


class TokenVerifier:
    """Verifies Cognito id tokens: RS256 signature from the pool's JWKS, issuer, audience, expiry."""

    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600)
        self._lock = threading.Lock()

    def claims(self, token: str | None) -> dict[str, str]:
        """The token's claims as API Gateway passes them (all strings), or UnauthorizedError."""
        if not token:
            raise UnauthorizedError("a token is required")
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        try:
            with self._lock:
                key = self._jwks.get_signing_key_from_jwt(token).key
            decoded: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            raise UnauthorizedError("the token is invalid or expired") from None
        if decoded.get("token_use", "id") != "id":
            raise UnauthorizedError("an id token is required")
        return {name: _claim_string(value) for name, value in decoded.items()}


def _claim_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def verifier() -> TokenVerifier:
    """The process-wide verifier for the configured user pool (the composition root's)."""
    return ports.token_verifier()
