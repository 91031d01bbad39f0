"""Synthetic logged feedback where the truth is known, for checks and benchmarks.

``bernoulli_log`` logs ``n`` rounds of a fixed logging distribution over arms with Bernoulli
rewards; the true value of any evaluation distribution ``pi`` is ``pi @ means``.
``uniform_log_from_table`` logs a uniformly random arm of each row of a full reward table
(as in Li et al. 2011), so a replay and an online run can read the same table.
``plackett_luce_slates`` logs slates drawn without replacement with softmax weights and
reports both the item-position and the cascade (list-prefix) propensities.
"""

from __future__ import annotations

import numpy as np

from simulations.logged import LoggedFeedback

__all__ = [
    "bernoulli_log",
    "plackett_luce_probabilities",
    "plackett_luce_slates",
    "uniform_log_from_table",
]


def bernoulli_log(means: np.ndarray, logging: np.ndarray, n: int, seed: int) -> LoggedFeedback:
    """``n`` rounds: arm ``a ~ logging``, reward ``~ Bernoulli(means[a])``.

    >>> log = bernoulli_log(np.array([0.1, 0.5]), np.array([0.5, 0.5]), 1000, seed=0)
    >>> log.n_rounds, log.n_actions, float(log.propensities[0])
    (1000, 2, 0.5)
    """
    mu = np.asarray(means, dtype=np.float64)
    p = np.asarray(logging, dtype=np.float64)
    rng = np.random.default_rng(seed)
    actions = rng.choice(mu.size, size=n, p=p)
    rewards = (rng.random(n) < mu[actions]).astype(np.float64)
    return LoggedFeedback(
        actions=actions,
        rewards=rewards,
        propensities=p[actions],
        n_actions=mu.size,
        logging_distribution=np.broadcast_to(p[None, :, None], (n, mu.size, 1)),
    )


def uniform_log_from_table(table: np.ndarray, seed: int) -> LoggedFeedback:
    """A uniform logging policy reading row ``t`` of the reward table ``(T, K)``."""
    t, k = table.shape
    actions = np.asarray(np.random.default_rng(seed).integers(0, k, size=t))
    return LoggedFeedback(
        actions=actions,
        rewards=table[np.arange(t), actions],
        propensities=np.full(t, 1.0 / k),
        n_actions=k,
    )


def plackett_luce_probabilities(
    weights: np.ndarray, slates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cascade probability of each prefix and item-position marginals of a Plackett-Luce
    ranking policy with positive ``weights``.

    ``slates`` is ``(n, L)`` (item per slot); returns ``cascade`` ``(n, L)``, the probability
    of the prefix up to each slot, and ``marginal`` ``(K, L)``, the probability of each item at
    each slot (exact, by enumerating prefixes; for small ``K`` and ``L``).
    """
    w = np.asarray(weights, dtype=np.float64)
    n, length = slates.shape
    cascade = np.empty((n, length))
    chosen_mass = np.zeros(n)
    running = np.ones(n)
    total = w.sum()
    for k in range(length):
        step = w[slates[:, k]] / (total - chosen_mass)
        running = running * step
        cascade[:, k] = running
        chosen_mass += w[slates[:, k]]
    marginal = np.zeros((w.size, length))
    prefixes: list[tuple[tuple[int, ...], float]] = [((), 1.0)]
    for k in range(length):
        nxt: list[tuple[tuple[int, ...], float]] = []
        for prefix, prob in prefixes:
            rest = total - w[list(prefix)].sum()
            for item in range(w.size):
                if item in prefix:
                    continue
                q = prob * w[item] / rest
                marginal[item, k] += q
                nxt.append(((*prefix, item), q))
        prefixes = nxt
    return cascade, marginal


def plackett_luce_slates(
    weights: np.ndarray, item_means: np.ndarray, length: int, n: int, seed: int
) -> tuple[LoggedFeedback, np.ndarray]:
    """``n`` slates of ``length`` slots drawn by Plackett-Luce with ``weights``; a slot's click
    is ``Bernoulli(item_means[item] * 0.8**slot)``. Returns the log (rows = slots, with
    ``slates`` and ``cascade_propensities``) and the ``(n, length)`` slates."""
    w = np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    gumbel = np.log(w)[None, :] - np.log(-np.log(rng.random((n, w.size))))
    slates = np.argsort(-gumbel, axis=1)[:, :length]
    cascade, marginal = plackett_luce_probabilities(w, slates)
    decay = 0.8 ** np.arange(length)
    clicks = (rng.random((n, length)) < item_means[slates] * decay).astype(np.float64)
    log = LoggedFeedback(
        actions=slates.ravel(),
        rewards=clicks.ravel(),
        propensities=marginal[slates, np.arange(length)].ravel(),
        n_actions=w.size,
        positions=np.tile(np.arange(length), n),
        n_positions=length,
        slates=np.repeat(np.arange(n), length),
        cascade_propensities=cascade.ravel(),
    )
    return log, slates
