r"""Thompson sampling: Beta-Bernoulli, Gaussian with unknown variance, and top-two.

Each policy draws one sample from every arm's posterior and plays the argmax. The
allocation, the probability that arm ``i``'s sample is the largest,

.. math:: \pi_i = \int \prod_{j \ne i} F_j(x)\, dF_i(x),

has no closed form; it is computed by quadrature on a grid made of quantiles of every
arm's posterior (logit-spaced from 1e-12 to 1 - 1e-12, so peaked posteriors are resolved;
one in eight computed exactly, the others interpolated),
which is far more accurate than Monte Carlo for the small probabilities that propensity
weighting divides by. The grid holds ``max(64, 4096 // n_arms)`` quantiles per arm; the
error on each probability, against adaptive quadrature (``scipy.integrate.quad``), is about
1e-5 for 4 arms, 1e-4 for 10 and 1e-3 for 100 (``tests/bandit/test_thompson.py``).

For speed, single decisions read posterior samples from a small buffer of ``buffer``
independent draws per arm; when an arm's statistics change, its unread samples are redrawn
from its new posterior, so every decision still uses fresh, independent draws from the
current posteriors: the policy is exactly Thompson sampling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from scipy import special

from bandit.base import Policy
from bandit.stats import Changed
from bandit.validation import check_beta_prior, check_scalar

_CHUNK = 65_536  # rows of posterior draws generated at once in batch paths


def thompson_allocation(
    cdf: Callable[[np.ndarray], np.ndarray],
    ppf: Callable[[np.ndarray], np.ndarray],
    n_arms: int,
    points: int = 4096,
) -> np.ndarray:
    r"""Probability that each arm's posterior draw is the largest, by quadrature.

    ``cdf(x)`` and ``ppf(q)`` evaluate every arm's posterior CDF and quantile function,
    arms on the last axis. The integral :math:`\int \prod_{j\ne i}F_j\,dF_i` is summed
    over a grid of every arm's quantiles (``max(64, points // n_arms)`` per arm), with the
    product taken at interval midpoints (as the mean of its end values) and computed by
    prefix and suffix products, so an arm's own CDF is never divided out.
    """
    if n_arms == 1:
        return np.ones(1)
    per_arm = max(64, points // n_arms)
    grid = np.unique(_quantile_grid(ppf, per_arm).ravel())
    cdf_values = cdf(grid[:, None])  # (grid, arms)
    mass = np.diff(cdf_values, axis=0)
    mid = 0.5 * (cdf_values[1:] + cdf_values[:-1])
    ones = np.ones((mid.shape[0], 1))
    before = np.cumprod(np.hstack([ones, mid[:, :-1]]), axis=1)
    after = np.cumprod(np.hstack([ones, mid[:, :0:-1]]), axis=1)[:, ::-1]
    p = (before * after * mass).sum(axis=0)
    p = np.maximum(p, 0.0)
    return p / p.sum()


_STRIDE = 8  # grid levels per exactly computed quantile (see _quantile_grid)


def _quantile_grid(ppf: Callable[[np.ndarray], np.ndarray], per_arm: int) -> np.ndarray:
    """Every arm's quantiles at ``per_arm`` levels logit-spaced from 1e-12 to 1 - 1e-12,
    shape (per_arm, arms).

    Quantile functions are the costly part (an iterative inversion each), so they are
    computed exactly at every :data:`_STRIDE`-th level and at both ends, and linearly
    interpolated in logit(level) between: a smooth, monotone curve, so the points stay
    ordered and as dense where the mass is. The quadrature needs a fine grid there, not
    exact quantiles: the CDFs are evaluated exactly at every point.
    """
    t = np.linspace(-27.6, 27.6, per_arm)
    exact = np.unique(np.r_[np.arange(0, per_arm, _STRIDE), per_arm - 1])
    anchors = ppf(special.expit(t[exact])[:, None])  # (len(exact), arms)
    left = np.clip(np.searchsorted(t[exact], t, side="right") - 1, 0, len(exact) - 2)
    w = ((t - t[exact][left]) / (t[exact][left + 1] - t[exact][left]))[:, None]
    return anchors[left] * (1.0 - w) + anchors[left + 1] * w


class PosteriorSampling(Policy):
    """Base of the Thompson family: subclasses write :meth:`_draw`."""

    exact_allocation: ClassVar[bool] = False

    def __init__(self, n_arms: int, *, buffer: int = 32, **kwargs: Any) -> None:
        super().__init__(n_arms, **kwargs)
        self.buffer = int(check_scalar(buffer, "buffer", kind=int, min_val=1, max_val=4096))
        self._depth = 1 if self.stats.changes_all else self.buffer
        self._samples = np.zeros((self._depth, self._n_arms))
        self._pos = self._depth  # next unread row; == depth means "refill before reading"

    def _hyper_params(self) -> dict[str, Any]:
        return {"buffer": self.buffer}

    def _draw(self, rng: np.random.Generator, size: int, arm: int | None = None) -> np.ndarray:
        """``size`` posterior draws: shape (size, n_arms), or (size,) for one ``arm``."""
        raise NotImplementedError

    def _next_samples(self) -> np.ndarray:
        pos = self._pos
        if pos >= self._depth:
            self._samples = self._draw(self._rng, self._depth)
            pos = 0
        self._pos = pos + 1
        return self._samples[pos]

    def _select_arm(self) -> int:
        return int(self._next_samples().argmax())

    def _select_batch(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.int64)
        for start in range(0, n, _CHUNK):
            m = min(_CHUNK, n - start)
            out[start : start + m] = self._draw(self._rng, m).argmax(axis=1)
        return out

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """Posterior CDF of every arm at ``x`` (broadcast against the arms, last axis)."""
        raise NotImplementedError

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        """Posterior quantiles of every arm at levels ``q`` (broadcast, arms on the last axis)."""
        raise NotImplementedError

    def _base_allocation(self) -> np.ndarray:
        return thompson_allocation(self._cdf, self._ppf, self._n_arms)

    def _after_update(self, arm: int, reward: float, changed: Changed) -> None:
        self._refresh_samples(changed)

    def _after_update_batch(self, arms: np.ndarray, rewards: np.ndarray, changed: Changed) -> None:
        self._refresh_samples(changed)

    def _refresh_samples(self, changed: Changed) -> None:
        pos = self._pos
        if pos >= self._depth:
            return
        if changed is None or len(changed) > 2:
            self._pos = self._depth
            return
        for a in changed:
            self._samples[pos:, a] = self._draw(self._rng, self._depth - pos, a)

    def _on_arms_changed(self, removed: int | None = None) -> None:
        self._samples = np.zeros((self._depth, self._n_arms))
        self._pos = self._depth

    def _extra_state(self) -> dict[str, Any]:
        return {"samples": self._samples[self._pos :].tolist(), "depth": self._depth}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        rows = np.asarray(state["samples"], dtype=np.float64).reshape(-1, self._n_arms)
        self._samples = np.zeros((self._depth, self._n_arms))
        self._pos = self._depth - rows.shape[0]
        self._samples[self._pos :] = rows


class BetaThompson(PosteriorSampling):
    r"""Beta-Bernoulli Thompson sampling (rewards in [0, 1]; fractional rewards allowed).

    Arm ``i``'s posterior is :math:`\mathrm{Beta}(a_0 + S_i, b_0 + n_i - S_i)`. Over
    discounted, sliding-window or change-point statistics this is discounted TS
    (Raj & Kalyani, 2017), sliding-window TS, or GLR-restarted TS.

    >>> from bandit import make_policy
    >>> p = make_policy("thompson", 2, seed=1)
    >>> p.update_batch([0] * 50 + [1] * 50, [1.0] * 40 + [0.0] * 10 + [0.0] * 50)
    >>> [int(a) for a in p.select_batch(5).arms]
    [0, 0, 0, 0, 0]
    """

    name = "thompson"

    def __init__(
        self, n_arms: int, *, prior_alpha: float = 1.0, prior_beta: float = 1.0, **kwargs: Any
    ) -> None:
        self.prior_alpha, self.prior_beta = check_beta_prior(prior_alpha, prior_beta)
        super().__init__(n_arms, **kwargs)

    def _hyper_params(self) -> dict[str, Any]:
        return {
            **super()._hyper_params(),
            "prior_alpha": self.prior_alpha,
            "prior_beta": self.prior_beta,
        }

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-arm Beta parameters ``(alpha, beta)``."""
        s = self.stats
        return s.beta_posterior(self.prior_alpha, self.prior_beta)

    def _select_batch(self, n: int) -> np.ndarray:
        """Draw ``n`` Thompson decisions, skipping the draws of arms that cannot win.

        Arms whose posterior is far below the leaders' ("outsiders") are drawn by inversion,
        ``X = F^{-1}(U)``: with ``L`` the smallest row maximum among the other arms, a
        uniform ``U <= F(L)`` means ``X <= L``, which loses, so only the rare ``U > F(L)``
        are inverted and compared. Every draw still follows the arm's posterior exactly.
        """
        a, b = self.posterior()
        k = a.size
        if n < 256 or k < 4:
            return super()._select_batch(n)
        # An arm is an outsider when its sample beats the leader's 0.1% quantile less than
        # 3% of the time: one inversion costs about 16 direct draws, so this saves work.
        leader = int(np.argmax(a / (a + b)))
        floor = special.betaincinv(a[leader], b[leader], 1e-3)
        tail = special.betaincc(a, b, floor)
        tail[leader] = 1.0
        outside = np.flatnonzero(tail < 0.03)
        if outside.size < 2:
            return super()._select_batch(n)
        inside = np.setdiff1d(np.arange(k), outside)
        out = np.empty(n, dtype=np.int64)
        for start in range(0, n, _CHUNK):
            m = min(_CHUNK, n - start)
            draws = self._rng.beta(a[inside], b[inside], size=(m, inside.size))
            best = draws.argmax(axis=1)
            top = draws[np.arange(m), best]
            winner = inside[best]
            tau = special.betainc(a[outside], b[outside], top.min())
            u = self._rng.random((m, outside.size))
            rows, cols = np.nonzero(u > tau)
            if rows.size:
                x = special.betaincinv(a[outside][cols], b[outside][cols], u[rows, cols])
                for r, c, v in zip(rows.tolist(), cols.tolist(), x.tolist(), strict=True):
                    if v > top[r]:
                        top[r] = v
                        winner[r] = outside[c]
            out[start : start + m] = winner
        return out

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        a, b = self.posterior()
        return special.betainc(a, b, x)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        a, b = self.posterior()
        return special.betaincinv(a, b, q)

    def _draw(self, rng: np.random.Generator, size: int, arm: int | None = None) -> np.ndarray:
        s = self.stats
        if arm is not None:
            a = self.prior_alpha + s.sums[arm]
            b = self.prior_beta + max(s.counts[arm] - s.sums[arm], 0.0)
            return rng.beta(a, b, size=size)
        a, b = self.posterior()
        return rng.beta(a, b, size=(size, a.size))


class GaussianThompson(PosteriorSampling):
    r"""Thompson sampling for Gaussian rewards with unknown mean and variance.

    Normal-inverse-gamma prior :math:`(\mu_0, \kappa_0, a_0, b_0)`; the marginal posterior
    of arm ``i``'s mean is a Student t with :math:`2a_n` degrees of freedom, location
    :math:`\mu_n` and scale :math:`\sqrt{b_n / (a_n \kappa_n)}` where
    :math:`\kappa_n = \kappa_0 + n`, :math:`\mu_n = (\kappa_0\mu_0 + n\bar x)/\kappa_n`,
    :math:`a_n = a_0 + n/2` and
    :math:`b_n = b_0 + \tfrac12 n s^2 + \kappa_0 n (\bar x-\mu_0)^2 / (2\kappa_n)`.

    Rewards must lie in ``reward_range`` = [-1e100, 1e100]; larger magnitudes raise
    ``ValueError`` because their squares (about 1e200 at the bound) and the posterior
    terms built from them would overflow float64 within a few observations and turn every
    probability into NaN. The variance :math:`s^2` comes from sums shifted by each arm's
    first reward (:class:`bandit.stats.ArmStats`), so rewards such as 1e8 +- 1 keep it
    accurate; the precision left is that of the rewards themselves (about 1e-16 of their
    magnitude).
    """

    name = "gaussian-thompson"
    #: Largest reward magnitude accepted (see the class docstring).
    max_abs_reward: ClassVar[float] = 1e100
    reward_range: ClassVar[tuple[float, float]] = (-max_abs_reward, max_abs_reward)

    def __init__(
        self,
        n_arms: int,
        *,
        prior_mean: float = 0.0,
        prior_kappa: float = 1e-3,
        prior_a: float = 1.0,
        prior_b: float = 1e-2,
        **kwargs: Any,
    ) -> None:
        self.prior_mean = float(check_scalar(prior_mean, "prior_mean"))
        self.prior_kappa = float(
            check_scalar(prior_kappa, "prior_kappa", min_val=0.0, include_min=False)
        )
        self.prior_a = float(check_scalar(prior_a, "prior_a", min_val=0.0, include_min=False))
        self.prior_b = float(check_scalar(prior_b, "prior_b", min_val=0.0, include_min=False))
        super().__init__(n_arms, **kwargs)

    def _hyper_params(self) -> dict[str, Any]:
        return {
            **super()._hyper_params(),
            "prior_mean": self.prior_mean,
            "prior_kappa": self.prior_kappa,
            "prior_a": self.prior_a,
            "prior_b": self.prior_b,
        }

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-arm Student-t ``(location, scale, degrees of freedom)`` of the mean."""
        s = self.stats
        n, xbar = s.counts, s.means
        kappa = self.prior_kappa + n
        loc = (self.prior_kappa * self.prior_mean + n * xbar) / kappa
        a = self.prior_a + n / 2.0
        b = (
            self.prior_b
            + 0.5 * n * s.variances
            + self.prior_kappa * n * (xbar - self.prior_mean) ** 2 / (2.0 * kappa)
        )
        return loc, np.sqrt(b / (a * kappa)), 2.0 * a

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        loc, scale, df = self.posterior()
        return special.stdtr(df, (x - loc) / scale)

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        loc, scale, df = self.posterior()
        return loc + scale * special.stdtrit(df, q)

    def _draw(self, rng: np.random.Generator, size: int, arm: int | None = None) -> np.ndarray:
        loc, scale, df = self.posterior()
        if arm is not None:
            return loc[arm] + scale[arm] * rng.standard_t(df[arm], size=size)
        return loc + scale * rng.standard_t(df, size=(size, loc.size))


class TopTwoThompson(BetaThompson):
    r"""Top-two Thompson sampling (Russo, 2016) with Beta posteriors.

    With probability ``beta`` play the leader (the argmax of one posterior draw); otherwise
    redraw, up to ``max_resamples`` times, until another arm leads, and play that
    challenger (the leader if every redraw failed). With :math:`\pi` the Thompson
    allocation and :math:`m` = ``max_resamples``, the allocation is exactly

    .. math:: \beta\pi_i + (1-\beta)\Big[\sum_{j\ne i}\pi_j\,\pi_i
              \frac{1-\pi_j^{m}}{1-\pi_j} + \pi_i^{m+1}\Big].
    """

    name = "top-two-thompson"

    def __init__(
        self, n_arms: int, *, beta: float = 0.5, max_resamples: int = 256, **kwargs: Any
    ) -> None:
        self.beta = float(check_scalar(beta, "beta", min_val=0.0, max_val=1.0))
        self.max_resamples = int(
            check_scalar(max_resamples, "max_resamples", kind=int, min_val=1, max_val=1_000_000)
        )
        super().__init__(n_arms, **kwargs)

    def _hyper_params(self) -> dict[str, Any]:
        return {**super()._hyper_params(), "beta": self.beta, "max_resamples": self.max_resamples}

    def _challengers(self, leaders: np.ndarray) -> np.ndarray:
        """For each leader, the first of up to ``max_resamples`` redraws led by another arm.

        Redraws come in blocks that start at 2 rows per leader and double (up to 4096 rows
        in all), so a single decision costs a few redraws when a challenger appears early
        and a few blocks when the leader keeps winning."""
        out = leaders.copy()
        todo = np.arange(leaders.size)
        left = self.max_resamples
        rows = 2
        while todo.size and left:
            block = min(left, rows, max(1, 4096 // todo.size))
            rows *= 2
            draws = (
                self._draw(self._rng, todo.size * block).argmax(axis=1).reshape(todo.size, block)
            )
            differs = draws != leaders[todo, None]
            found = differs.any(axis=1)
            first = differs.argmax(axis=1)
            out[todo[found]] = draws[found, first[found]]
            todo = todo[~found]
            left -= block
        return out

    def _select_arm(self) -> int:
        leader = int(self._next_samples().argmax())
        if self._n_arms == 1 or self._rng.random() < self.beta:
            return leader
        return int(self._challengers(np.array([leader]))[0])

    def _select_batch(self, n: int) -> np.ndarray:
        arms = super()._select_batch(n)
        if self._n_arms == 1:
            return arms
        todo = np.flatnonzero(self._rng.random(n) >= self.beta)
        arms[todo] = self._challengers(arms[todo])
        return arms

    def _base_allocation(self) -> np.ndarray:
        pi = super()._base_allocation()
        if self._n_arms == 1:
            return pi
        m = self.max_resamples
        free = 1.0 - pi
        # (1 - pi^m) / (1 - pi) as a geometric sum, stable when pi is close to 1
        geometric = np.where(
            free > 1e-9, -np.expm1(m * np.log1p(-free)) / np.where(free > 1e-9, free, 1.0), m
        )
        weight = pi * geometric
        challenger = pi * (weight.sum() - weight) + pi ** (m + 1)
        alloc = self.beta * pi + (1.0 - self.beta) * challenger
        return alloc / alloc.sum()
