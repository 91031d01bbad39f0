"""Scoped API keys: create, revoke, list, verify (only the SHA-256 of a key is stored).

A key has a scope (``read`` < ``write`` < ``admin``) and either covers every experiment (a
global key, ``experiments`` None) or only the experiments listed when it was created.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import Invalid, NotFound
from service.models import ApiKey, utcnow
from service.schemas import KEY_PATTERN
from service.validation import text_problem

SCOPES = ("read", "write", "admin")  # each includes the ones before it


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without its secret."""

    id: int
    prefix: str
    scope: str
    name: str
    #: The experiment keys this key may act on; None: every experiment.
    experiments: tuple[str, ...] | None = None

    def covers(self, experiment: str) -> bool:
        """Whether this key may act on ``experiment``."""
        return self.experiments is None or experiment in self.experiments


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _info(key: ApiKey) -> KeyInfo:
    experiments = tuple(key.experiments) if key.experiments is not None else None
    return KeyInfo(key.id, key.prefix, key.scope, key.name, experiments)


def create_api_key(
    session: Session, scope: str, name: str = "", experiments: Sequence[str] | None = None
) -> tuple[str, KeyInfo]:
    """Create a key; the raw key is returned once and only its SHA-256 is stored.

    ``experiments`` limits the key to those experiment keys (they need not exist yet, so a
    limited admin key can create them); None makes a global key. Keys carry 256 random
    bits, so a fast hash is enough (no password stretching needed).
    """
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    problem = text_problem(name) if len(name) <= 200 else "must be at most 200 characters"
    if problem is not None:
        raise Invalid(f"key name {problem}")
    limited = None
    if experiments is not None:
        limited = list(dict.fromkeys(experiments))
        if not limited:
            raise Invalid("experiments must name at least one experiment (or be None: global)")
        bad = [e for e in limited if not re.fullmatch(KEY_PATTERN, e)]
        if bad:
            raise Invalid(f"not an experiment key: {bad[0]!r} (pattern {KEY_PATTERN})")
    prefix = secrets.token_hex(4)
    raw = f"bf_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        prefix=prefix,
        key_hash=hash_key(raw),
        scope=scope,
        name=name,
        experiments=limited,
        created_at=utcnow(),
    )
    session.add(key)
    session.commit()
    return raw, _info(key)


def revoke_api_key(session: Session, key_or_prefix: str) -> KeyInfo:
    """Revoke by full key or by its public prefix (idempotent)."""
    raw = key_or_prefix.strip()
    cond = ApiKey.key_hash == hash_key(raw) if raw.startswith("bf_") else ApiKey.prefix == raw
    key = session.scalar(select(ApiKey).where(cond))
    if key is None:
        raise NotFound(f"no API key matches {raw[:11]!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    session.commit()
    return _info(key)


def list_api_keys(session: Session) -> list[tuple[KeyInfo, bool]]:
    """Every key with whether it is revoked, in creation order."""
    return [
        (_info(k), k.revoked_at is not None)
        for k in session.scalars(select(ApiKey).order_by(ApiKey.id))
    ]


def verify_api_key(session: Session, raw: str) -> KeyInfo | None:
    """The key ``raw`` if it is stored and not revoked."""
    key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None))
    )
    return _info(key) if key else None


def active_key(session: Session, key_id: int) -> KeyInfo | None:
    """The key with id ``key_id`` if it exists and is not revoked (dashboard sessions)."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))
    return _info(key) if key else None
