"""Map a function over independent tasks, in order, on local processes or on a Ray cluster.

Grids of simulation or replay runs are embarrassingly parallel: every task is a picklable
argument and every result comes back to the caller, in the order of the tasks, whatever
order the workers finish in.  Two backends do the work:

* ``"local"`` (the default): a ``ProcessPoolExecutor`` with ``jobs`` worker processes on
  this machine (``jobs=1``, or a single task, runs in this process);
* ``"ray"``: one Ray task per item, so a grid spreads over every machine of a Ray cluster.
  If this process is already connected (``ray.init(address=...)`` was called, e.g. by a
  driver script on the cluster), the tasks go there.  Otherwise :func:`map_ordered` calls
  ``ray.init()``, which joins the cluster named by ``RAY_ADDRESS`` or, without it, starts
  a local Ray instance with ``jobs`` CPUs, and shuts it down again at the end.  Ray is an
  optional dependency (``pip install 'bandit-fusion[ray]'``).

>>> list(map_ordered(abs, [-2, 3, -1], jobs=1))
[2, 3, 1]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Literal, TypeVar

__all__ = ["BACKENDS", "Backend", "available_cores", "map_ordered"]

Backend = Literal["local", "ray"]
BACKENDS: tuple[Backend, ...] = ("local", "ray")

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _map_local(func: Callable[[T], R], tasks: Sequence[T], jobs: int) -> Iterator[R]:
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            yield func(task)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        yield from pool.map(func, tasks)


def _map_ray(func: Callable[[T], R], tasks: Sequence[T], jobs: int | None) -> Iterator[R]:
    try:
        import ray
    except ImportError as exc:
        raise ModuleNotFoundError(
            "backend 'ray' needs Ray: pip install 'bandit-fusion[ray]'", name="ray"
        ) from exc
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(func)
        refs = [remote.remote(task) for task in tasks]
        for ref in refs:
            yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def map_ordered(
    func: Callable[[T], R],
    tasks: Sequence[T],
    *,
    jobs: int | None = None,
    backend: Backend = "local",
) -> Iterator[R]:
    """Yield ``func(task)`` for every task, in the order of ``tasks``.

    Parameters
    ----------
    func
        A picklable top-level function of one argument.
    tasks
        Its arguments (picklable).
    jobs
        ``"local"``: worker processes (default: all cores; 1 runs in this process).
        ``"ray"``: CPUs of the local instance if this call starts one (default: all cores);
        ignored when connected to a running cluster, which schedules by its own resources.
    backend
        ``"local"`` or ``"ray"`` (see the module docstring).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}.")
    if backend == "ray":
        return _map_ray(func, tasks, jobs)
    return _map_local(func, tasks, available_cores() if jobs is None else jobs)
