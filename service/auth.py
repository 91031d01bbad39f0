"""Scoped API keys.

A key is sent as ``Authorization: Bearer bf_...`` (or ``X-API-Key: bf_...``). Scopes are
ordered: ``read`` < ``write`` < ``admin``; a key satisfies any scope up to its own, so an
``admin`` key can also decide and read. A key may also be limited to a list of experiments
(:meth:`KeyInfo.covers`); a global key acts on all. Only the SHA-256 of a key is stored.

Verified keys are trusted for ``auth_cache_ttl_s`` seconds per process (default 2 s) to spare
a query per request; a revoked key therefore stops working within that delay.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from service.store.keys import SCOPES, KeyInfo, hash_key, verify_api_key

RANK = {scope: i for i, scope in enumerate(SCOPES)}


class KeyVerifier:
    def __init__(self, factory: sessionmaker[Session], ttl_s: float) -> None:
        self._factory = factory
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, KeyInfo]] = {}

    def cached(self, raw: str) -> KeyInfo | None:
        """The key if it was verified less than ``ttl`` seconds ago (no I/O), else None."""
        digest = hash_key(raw)
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        return None

    def verify(self, raw: str) -> KeyInfo | None:
        """Check ``raw`` against the database (or the cache). Blocking."""
        hit = self.cached(raw)
        if hit is not None:
            return hit
        digest = hash_key(raw)
        now = time.monotonic()
        with self._factory() as session:
            info = verify_api_key(session, raw)
            session.rollback()
        with self._lock:
            if info is None:
                self._cache.pop(digest, None)
            elif self._ttl > 0:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, info)
        return info


def allows(key: KeyInfo, scope: str) -> bool:
    return RANK[key.scope] >= RANK[scope]
