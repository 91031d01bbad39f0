"""Dashboard sessions: an API key exchanged once for a signed, HTTP-only cookie.

The cookie holds ``<key id>.<nonce>.<expiry>.<HMAC-SHA256 signature>``; never the key
itself. Every request re-reads the key row, so a revoked key ends its sessions at once and
a changed scope applies immediately. The CSRF token of a session is an HMAC of its nonce
under the same secret: forms carry it in a hidden field, and a POST without it is refused.

Sessions are stateless: logging out clears the cookie in the browser; a copied cookie stays
valid until it expires (``dashboard_session_s``) or its key is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "bf_dashboard"


@dataclass(frozen=True)
class SessionToken:
    """What a valid cookie says: which key logged in, the session's nonce and its expiry."""

    key_id: int
    nonce: str
    expires: int


class SessionSigner:
    """Signs and checks session cookies and CSRF tokens with one secret.

    >>> signer = SessionSigner(b"s" * 32, lifetime_s=60)
    >>> token = signer.verify(signer.issue(7))
    >>> token is not None and token.key_id == 7
    True
    """

    def __init__(self, secret: bytes, lifetime_s: int) -> None:
        self._secret = secret
        self.lifetime_s = lifetime_s

    def _mac(self, purpose: str, message: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{message}".encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: int, now: float | None = None) -> str:
        """A new cookie value for the key ``key_id``."""
        expires = int((time.time() if now is None else now) + self.lifetime_s)
        body = f"{key_id}.{secrets.token_hex(16)}.{expires}"
        return f"{body}.{self._mac('session', body)}"

    def verify(self, cookie: str | None, now: float | None = None) -> SessionToken | None:
        """The token if ``cookie`` is well formed, correctly signed and not expired."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or not (parts[0].isdigit() and parts[2].isdigit()):
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3], self._mac("session", body)):
            return None
        expires = int(parts[2])
        if expires < (time.time() if now is None else now):
            return None
        return SessionToken(int(parts[0]), parts[1], expires)

    def csrf(self, token: SessionToken) -> str:
        """The CSRF token forms of this session carry."""
        return self._mac("csrf", token.nonce)

    def csrf_ok(self, token: SessionToken, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(str(sent), self.csrf(token))
