"""Failures of background work (the settling pass), per experiment, as this process saw them.

The settling pass works on each experiment in its own transaction; a failure on one is
logged, recorded here and shown in that experiment's health (``background_error``), and
the pass goes on with the others. The record is cleared by the next success. Each worker
process runs its own pass, so each keeps its own record.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from service.models import utcnow


@dataclass(frozen=True)
class Failure:
    """The last failure of background work on one experiment."""

    at: dt.datetime
    message: str


class BackgroundFailures:
    """Thread-safe record of the last background failure per experiment key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Failure] = {}

    def record(self, key: str, err: BaseException) -> Failure:
        failure = Failure(utcnow(), f"{type(err).__name__}: {err}"[:500])
        with self._lock:
            self._items[key] = failure
        return failure

    def clear(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def get(self, key: str) -> Failure | None:
        with self._lock:
            return self._items.get(key)
