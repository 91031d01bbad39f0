"""Exceptions raised by the arms, in one place so callers can catch them by kind.

Bad arguments raise subclasses of :class:`ValueError` whose message names the
argument, so ``except ValueError`` keeps working for callers that do not care
which check failed.
"""

from __future__ import annotations

__all__ = ["ArmError", "ChecksumError", "NotFittedError", "UnknownItemError"]


class ArmError(Exception):
    """Base class of every error the ``arms`` package raises on purpose."""


class NotFittedError(ArmError, RuntimeError):
    """An arm was asked to score or save before :meth:`fit` or :meth:`load`."""


class UnknownItemError(ArmError, ValueError):
    """``item_ids`` holds an id the arm did not see at fit time (the catalogue is closed)."""


class ChecksumError(ArmError, RuntimeError):
    """Model weights on disk do not match the SHA-256 the code was written against."""
