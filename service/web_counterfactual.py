"""Counterfactual panel: what other policies would have earned from an experiment's own log.

The log is the service's export (:func:`service.export.export_log`) read back as data by
:func:`simulations.service_log.load_service_log` (fallback answers dropped: they were not the
policy's). Only settled decisions are used (a pending one would count as a zero): with a
reward window, those made before the watermark ``policy_states.settled_until`` (their window
closed and the service learned them); without one, every decision. And only the newest
:data:`CAP` of them, so the cost is bounded whatever the experiment's size. Each policy
that does not learn (uniform, each single arm, the current allocation frozen) is evaluated
by SNIPS and IPS (:mod:`simulations.ope`) with a seeded percentile-bootstrap 95% interval;
the logging policy's own mean reward on the same rows is shown beside them. Results are
cached per experiment and recomputed when the policy version changed and the cached one is
older than :attr:`CounterfactualCache.fresh_s` (60 s): a busy experiment costs at most one
evaluation a minute (the page names the version it was computed at).

``fuse`` experiments have no export (one observation per shown slot), so no panel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.export import export_log
from service.models import Experiment, PolicyState, utcnow
from service.store.common import as_utc, load
from simulations.ope import IPS, SNIPS, bootstrap_interval, evaluation_input
from simulations.ope import policies as ope_policies
from simulations.service_log import load_service_log

log = logging.getLogger("bandit_fusion.service")

#: Newest settled decisions evaluated (bounds the cost of the panel).
CAP = 5_000
N_BOOTSTRAP = 200


@dataclass(frozen=True)
class PolicyValue:
    """One policy's estimated mean reward per decision, in reward-definition units."""

    policy: str
    kind: str  # logged | uniform | arm | current
    #: None for a single arm never served in these decisions (nothing to weight)
    snips: float | None
    snips_low: float | None
    snips_high: float | None
    ips: float | None
    ips_low: float | None
    ips_high: float | None
    #: effective sample size of the importance weights (the rows the estimate rests on)
    ess: float
    best_arm: bool = False


@dataclass(frozen=True)
class Counterfactual:
    """The panel: rows per policy, or ``note`` saying why there is none."""

    rows: list[PolicyValue]
    decisions: int
    policy_version: int
    capped: bool
    note: str | None = None


def _row(name: str, kind: str, log: object, dist: np.ndarray, scale: float) -> PolicyValue:
    data = evaluation_input(log, dist)  # type: ignore[arg-type]
    s = SNIPS(n_bootstrap=N_BOOTSTRAP, seed=0).estimate(data)
    i = IPS(n_bootstrap=N_BOOTSTRAP, seed=0).estimate(data)
    return PolicyValue(
        name,
        kind,
        s.value * scale,
        s.ci_low * scale,
        s.ci_high * scale,
        i.value * scale,
        i.ci_low * scale,
        i.ci_high * scale,
        s.ess,
    )


def counterfactual(session: Session, exp: Experiment, state: PolicyState) -> Counterfactual:
    """Evaluate the fixed policies on the newest :data:`CAP` settled decisions (uncached)."""
    version = int(state.version)
    if exp.mode == "fuse":
        return Counterfactual(
            [],
            0,
            version,
            False,
            "Fused lists are not evaluated by this panel: it reads the export, which holds"
            " allocate experiments only.",
        )
    if exp.reward_window_s is None:
        before = utcnow()
    elif state.settled_until is None:
        return Counterfactual([], 0, version, False, "No settled decision yet.")
    else:
        before = as_utc(state.settled_until)
    allocation = np.asarray(state.allocation, dtype=np.float64)
    table = export_log(session, exp.key, newest=CAP + 1, made_before=before)
    capped = table.num_rows > CAP
    if capped:
        table = table.slice(1)
    try:
        log = load_service_log(table, drop_fallback=True).feedback
    except ValueError:
        return Counterfactual([], 0, version, False, "No settled decision yet.")
    scale = float(max(exp.reward_definition.values()))
    k = len(exp.arms)
    low, high = bootstrap_interval(log.rewards, n_bootstrap=N_BOOTSTRAP, seed=0)
    mean = float(log.rewards.mean())
    rows = [
        PolicyValue(
            "logged (what it earned)",
            "logged",
            mean * scale,
            low * scale,
            high * scale,
            None,
            None,
            None,
            float(log.n_rounds),
        ),
        _row("uniform", "uniform", log, ope_policies.uniform(k), scale),
        _row("current allocation, frozen", "current", log, allocation, scale),
    ]
    served = np.bincount(log.actions, minlength=k)
    arms = [
        _row(f"only {name}", "arm", log, np.eye(k)[j], scale)
        if served[j]
        else PolicyValue(f"only {name}", "arm", None, None, None, None, None, None, 0.0)
        for j, name in enumerate(exp.arms)
    ]
    best = max((j for j in range(k) if served[j]), key=lambda j: arms[j].snips or 0.0)
    arms[best] = replace(arms[best], best_arm=True)
    return Counterfactual(rows + arms, log.n_rounds, version, capped)


class CounterfactualCache:
    """Answers of :func:`counterfactual` per experiment (the last ``size`` experiments).

    A cached answer is reused while the policy version is unchanged, or while it is younger
    than ``fresh_s`` seconds. With a session ``factory`` a missing or outdated answer is
    computed in a background thread (one evaluation at a time, at most one queued per
    experiment) while the page shows the answer it has, or none yet: an evaluation takes
    about a second, too long for the page's render. Without one it is computed in the
    request. Thread-safe (pages render in a thread pool).
    """

    def __init__(
        self,
        factory: sessionmaker[Session] | None = None,
        size: int = 32,
        fresh_s: float = 60.0,
    ) -> None:
        self.size = size
        self.fresh_s = fresh_s
        self._factory = factory
        self._items: OrderedDict[int, tuple[float, Counterfactual]] = OrderedDict()
        self._running: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._pool = (
            None
            if factory is None
            else ThreadPoolExecutor(1, thread_name_prefix="bandit-fusion-counterfactual")
        )

    def get(self, session: Session, exp: Experiment, state: PolicyState) -> Counterfactual | None:
        """The experiment's answer: the cached one when current; else, with a factory, the
        cached one however old (None before the first) while a new one is computed."""
        if exp.mode == "fuse":  # nothing to evaluate: the answer is a note
            return counterfactual(session, exp, state)
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(exp.id)
            if hit is not None and (
                hit[1].policy_version == int(state.version) or now - hit[0] < self.fresh_s
            ):
                self._items.move_to_end(exp.id)
                return hit[1]
            if self._pool is not None:
                if exp.id not in self._running and not self._closed:
                    self._running[exp.id] = self._pool.submit(self._refresh, exp.id, exp.key)
                return None if hit is None else hit[1]
        value = counterfactual(session, exp, state)
        self._keep(exp.id, now, value)
        return value

    def wait(self, timeout: float | None = None) -> None:
        """Block until the evaluations queued now are done (tests, benchmarks)."""
        with self._lock:
            running = list(self._running.values())
        for future in running:
            future.result(timeout)

    def close(self) -> None:
        """Stop the background thread (queued evaluations are dropped)."""
        with self._lock:
            self._closed = True
            self._running.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _refresh(self, exp_id: int, key: str) -> None:
        assert self._factory is not None
        started = time.monotonic()
        try:
            with self._factory() as session:
                exp, state = load(session, key)
                value = counterfactual(session, exp, state)
                session.rollback()
            self._keep(exp_id, started, value)
        except Exception:
            log.exception("counterfactual panel of experiment %r failed", key)
            # shown until it is outdated (fresh_s), then tried again
            failed = Counterfactual([], 0, -1, False, "The estimates could not be computed.")
            self._keep(exp_id, started, failed)
        finally:
            with self._lock:
                self._running.pop(exp_id, None)

    def _keep(self, exp_id: int, at: float, value: Counterfactual) -> None:
        with self._lock:
            self._items[exp_id] = (at, value)
            self._items.move_to_end(exp_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
