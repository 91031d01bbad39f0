"""The KL-UCB index against a bracketing root finder."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from bandit.glr import bernoulli_kl
from bandit.ucb import kl_ucb_index


def _reference(p: float, n: float, level: float) -> float:
    d = level / n

    def f(q: float) -> float:
        return float(bernoulli_kl(np.array([p]), q)[0]) - d

    hi = 1.0 - 1e-12
    if p >= hi or f(hi) <= 0:
        return 1.0 if p >= hi else hi
    return optimize.brentq(f, min(p + 1e-15, hi), hi, xtol=1e-15)


@settings(max_examples=300, deadline=None)
@given(
    p=st.one_of(st.floats(0.0, 1.0), st.floats(0.0, 0.1)),
    n=st.floats(1.0, 1e6),
    level=st.floats(0.01, 20.0),
)
def test_kl_ucb_index_solves_the_kl_equation(p: float, n: float, level: float) -> None:
    got = float(kl_ucb_index(np.array([p]), np.array([n]), level)[0])
    assert got >= p - 1e-12
    assert abs(got - _reference(p, n, level)) < 1e-7
