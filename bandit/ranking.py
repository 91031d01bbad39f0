r"""Ranking probabilities of Thompson sampling: P(arm ``i`` is shown at position ``r``).

A Thompson policy that fills a list of ``k`` slots draws one sample per arm and shows the
arms in decreasing order of their samples. The probability that arm ``i`` lands at position
``r`` (0-based) is

.. math:: \int \big[t^{r}\big] \prod_{j \ne i} \big(F_j(x) + t\,(1 - F_j(x))\big)\, dF_i(x),

the coefficient of :math:`t^r` counting the ways exactly ``r`` other samples beat ``x``.
It is computed by the same quadrature as :func:`bandit.thompson.thompson_allocation` (a grid
of every arm's quantiles, CDFs averaged over each interval), with the leave-one-out products
of the degree-``k`` polynomials built from prefix and suffix products, so no CDF is divided
out. Position 0 is the Thompson allocation. Off-policy evaluation of ranking policies
(:mod:`simulations.ope`) divides by these probabilities, which is why they are computed
exactly rather than by Monte Carlo.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special

from bandit.base import Policy
from bandit.validation import check_scalar

__all__ = ["beta_ranking", "policy_ranking", "thompson_ranking"]


def _poly_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Product of polynomials (coefficients on the first axis), truncated to their length."""
    out = a[:1] * b[:1]
    for d in range(1, a.shape[0]):
        term = a[0] * b[d]
        for e in range(1, d + 1):
            term += a[e] * b[d - e]
        out = np.concatenate([out, term[None]])
    return out


def thompson_ranking(
    cdf: Callable[[np.ndarray], np.ndarray],
    ppf: Callable[[np.ndarray], np.ndarray],
    n_arms: int,
    k: int,
) -> np.ndarray:
    """Probability that each arm is shown at each of the first ``k`` positions.

    ``cdf(x)`` and ``ppf(q)`` evaluate every arm's posterior CDF and quantile function, arms
    on the last axis (as for :func:`bandit.thompson.thompson_allocation`). Returns an array
    of shape ``(n_arms, k)``; each column sums to 1.
    """
    k = int(check_scalar(k, "k", kind=int, min_val=1, max_val=n_arms))
    per_arm = max(64, 4096 // n_arms)
    levels = special.expit(np.linspace(-27.6, 27.6, per_arm))[:, None]
    grid = np.unique(ppf(levels).ravel())
    cdf_values = cdf(grid[:, None])  # (grid, arms)
    mass = np.diff(cdf_values, axis=0)
    mid = 0.5 * (cdf_values[1:] + cdf_values[:-1])
    mass = np.ascontiguousarray(mass.T)  # (arms, grid)
    factors = np.zeros((k, n_arms, mid.shape[0]))  # F_j + t (1 - F_j), truncated
    factors[0] = mid.T
    if k > 1:
        factors[1] = 1.0 - factors[0]
    one = np.zeros((k, mid.shape[0]))
    one[0] = 1.0
    prefix = np.empty_like(factors)  # product over j < i
    suffix = np.empty_like(factors)  # product over j > i
    acc = one
    for i in range(n_arms):
        prefix[:, i] = acc
        acc = _poly_mul(acc, factors[:, i])
    acc = one
    for i in range(n_arms - 1, -1, -1):
        suffix[:, i] = acc
        acc = _poly_mul(acc, factors[:, i])
    others = _poly_mul(prefix, suffix)  # (k, arms, grid): product over j != i
    p = (others * mass[None]).sum(axis=2).T
    p = np.maximum(p, 0.0)
    return p / p.sum(axis=0, keepdims=True)


def beta_ranking(alpha: np.ndarray, beta: np.ndarray, k: int) -> np.ndarray:
    """Ranking probabilities ``(n_arms, k)`` of Thompson sampling on ``Beta(alpha, beta)`` arms.

    >>> p = beta_ranking(np.array([2.0, 1.0, 1.0]), np.array([1.0, 1.0, 2.0]), 3)
    >>> [round(float(x), 4) for x in p[:, 0]]  # P(first): arm 0 most often
    [0.6, 0.3, 0.1]
    >>> [round(float(x), 6) for x in p.sum(axis=1)]  # every arm is somewhere in a full list
    [1.0, 1.0, 1.0]
    """
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError("alpha and beta must be 1-D arrays of the same, non-zero length.")
    if not (np.all(a > 0) and np.all(b > 0) and np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("alpha and beta must be finite and positive.")
    return thompson_ranking(
        lambda x: special.betainc(a, b, x), lambda q: special.betaincinv(a, b, q), a.size, k
    )


def policy_ranking(policy: Policy, k: int) -> np.ndarray:
    """Probability ``(n_arms, k)`` that ``policy`` shows each arm at each of ``k`` positions.

    With ``k == 1`` this is the policy's allocation (any policy). Longer lists are defined
    for the posterior-sampling family, whose list is the order of one draw per arm; other
    policies raise ``ValueError``. Allocation controls (floors, caps, burn-in) apply to the
    single choice only, so a controlled policy also raises for ``k > 1``.
    """
    k = int(check_scalar(k, "k", kind=int, min_val=1, max_val=policy.n_arms))
    if k == 1:
        return policy.allocation()[:, None]
    cdf = getattr(policy, "_cdf", None)
    ppf = getattr(policy, "_ppf", None)
    if cdf is None or ppf is None or policy.constraints.active or policy.constraints.burn_in:
        raise ValueError(
            f"policy {policy.name or type(policy).__name__!r} has no ranking distribution for "
            f"k={k}: only uncontrolled Thompson policies rank by their posterior draws."
        )
    try:
        return thompson_ranking(cdf, ppf, policy.n_arms, k)
    except NotImplementedError:
        raise ValueError(
            f"policy {policy.name!r} does not expose its posterior; use k=1."
        ) from None
