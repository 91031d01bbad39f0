"""What the group commits of decisions and rewards share: writer threads that take the
requests queued meanwhile as one group, and answer each request from there."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

STOP = object()  # queued once per writer thread by ``close``: stop after what came before


def collect(
    pending: queue.SimpleQueue[Any], max_items: int, max_wait_s: float
) -> tuple[list[Any], bool]:
    """The next group from ``pending`` (waiting for its first item): what is queued, up to
    ``max_items``, waiting up to ``max_wait_s`` after the first for more. Also whether
    :data:`STOP` was met (the caller stops after this group)."""
    first = pending.get()
    if first is STOP:
        return [], True
    group = [first]
    deadline = time.monotonic() + max_wait_s
    while len(group) < max_items:
        try:
            item = pending.get_nowait()
        except queue.Empty:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = pending.get(timeout=remaining)
            except queue.Empty:
                break
        if item is STOP:
            return group, True
        group.append(item)
    return group, False


def resolve(future: Future[Any], answer: Any) -> None:
    """Answer a request, unless it is gone (its task cancelled, e.g. at shutdown): the
    others of its group are answered all the same."""
    if not future.done():
        future.set_result(answer)


def fail(future: Future[Any], err: BaseException) -> None:
    """Fail a request with ``err``, unless it is gone (see :func:`resolve`)."""
    if not future.done():
        future.set_exception(err)


class GroupWriter:
    """Threads that take queued requests in groups and write each group
    (:meth:`_write`, in a subclass); every request carries a ``future`` answered from there.

    Parameters
    ----------
    max_items
        Most requests in one group.
    max_wait_s
        After the first request of a group, how long to wait for more before writing
        (0: write at once what is queued; a group is then what queued while the previous
        one was being written).
    threads
        Groups in flight at once. With one, a request that arrives while a group is being
        written waits for it to end before its own group starts; with two, it starts as
        soon as the other thread is free.
    """

    name = "group writer"

    def __init__(self, max_items: int, max_wait_s: float, threads: int) -> None:
        if max_items < 1 or threads < 1:
            raise ValueError("max_items and threads must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.n_threads = threads
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._collecting = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _put(self, item: Any) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} is closed")
            if not self._threads:  # started on first use: after uvicorn forks its workers
                for i in range(self.n_threads):
                    thread = threading.Thread(
                        target=self._run, name=f"{self.name.replace(' ', '-')}-{i}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            self._queue.put(item)

    def close(self) -> None:
        """Write what is queued, then stop the threads (later requests raise)."""
        with self._lock:
            self._closed = True
            for _ in self._threads:  # after every queued request: all are written first
                self._queue.put(STOP)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            # one thread collects at a time (the others are writing theirs): a group is
            # never split between two threads that both wait for it to fill
            with self._collecting:
                group, stop = collect(self._queue, self.max_items, self.max_wait_s)
            if not group:
                return
            try:
                self._write(group)
            except BaseException as err:  # never leave a request waiting
                for p in group:
                    fail(p.future, err)
                if not isinstance(err, Exception):
                    raise

    def _write(self, group: list[Any]) -> None:
        """Write ``group`` and answer each of its requests (``future``)."""
        raise NotImplementedError
