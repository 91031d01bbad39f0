"""Dashboard sessions: an API key exchanged once for a signed, HTTP-only cookie.

The cookie holds ``<key id>.<nonce>.<expiry>.<HMAC-SHA256 signature>``; never the key
itself. Every request re-reads the key row, so a revoked key ends its sessions at once and
a changed scope applies immediately. The CSRF token of a session is an HMAC of its nonce
under the same secret: forms carry it in a hidden field, and a POST without it is refused.

The login form is protected the same way before any session exists: the login page sets a
short-lived HTTP-only cookie holding a random nonce and puts the HMAC of that nonce in the
form; a login POST whose field does not match its cookie is refused (login CSRF: another site
cannot log a browser in under the attacker's key).

Logging out clears the cookie in the browser and marks the session's nonce logged out in this
process (:meth:`SessionSigner.revoke`), so a copy of the cookie is refused here too. Sessions
are otherwise stateless: with several worker processes, another worker accepts such a copy
until it expires (``dashboard_session_s``) or its key is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "bf_dashboard"
LOGIN_COOKIE = "bf_login"
LOGIN_LIFETIME_S = 3600


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
        self._revoked: dict[str, int] = {}  # nonce -> expiry, of sessions logged out here
        self._lock = threading.Lock()

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
        if expires < (time.time() if now is None else now) or parts[1] in self._revoked:
            return None
        return SessionToken(int(parts[0]), parts[1], expires)

    def revoke(self, token: SessionToken, now: float | None = None) -> None:
        """Refuse ``token`` from now on in this process (logout); expired entries are dropped."""
        t = time.time() if now is None else now
        with self._lock:
            self._revoked = {n: e for n, e in self._revoked.items() if e >= t}
            self._revoked[token.nonce] = token.expires

    def csrf(self, token: SessionToken) -> str:
        """The CSRF token forms of this session carry."""
        return self._mac("csrf", token.nonce)

    def csrf_ok(self, token: SessionToken, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(str(sent), self.csrf(token))

    def login_nonce(self, cookie: str | None) -> str:
        """The nonce of the login-form cookie ``cookie`` if well formed, else a new one."""
        if cookie and len(cookie) == 32 and all(c in "0123456789abcdef" for c in cookie):
            return cookie
        return secrets.token_hex(16)

    def login_csrf(self, nonce: str) -> str:
        """The token the login form carries for the login cookie ``nonce``."""
        return self._mac("login", nonce)

    def login_ok(self, nonce: str | None, sent: str | None) -> bool:
        """Whether a login POST's ``csrf`` field matches its login cookie."""
        return (
            bool(nonce)
            and bool(sent)
            and hmac.compare_digest(str(sent), self.login_csrf(str(nonce)))
        )
