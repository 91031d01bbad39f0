"""The policy registry: names, default hyper-parameters and construction from a name.

An entry pairs a policy class with the statistics it runs on, so an adaptive variant is a
policy over other statistics, not a copy of the policy. Defaults suit click-rate data
(rewards in {0, 1} with rates of a few percent).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bandit.allocation import Constraints
from bandit.base import Policy
from bandit.exp3 import Exp3
from bandit.stats import ArmStats, ChangePointStats, DiscountedStats, SlidingWindowStats
from bandit.thompson import BetaThompson, GaussianThompson, TopTwoThompson
from bandit.ucb import KLUCB, UCB1, BayesUCB, EpsilonGreedy, Softmax, UCB1Tuned


@dataclass(frozen=True)
class PolicySpec:
    """How to build the policy registered under ``name``."""

    name: str
    policy: type[Policy]
    stats: type[ArmStats] = ArmStats
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    def split(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``params`` into (policy kwargs, stats kwargs); reject unknown names."""
        policy_names = _keyword_names(self.policy)
        stats_names = _keyword_names(self.stats) - {"n_arms"}
        merged = {**self.defaults, **params}
        unknown = sorted(set(merged) - policy_names - stats_names)
        if unknown:
            allowed = sorted((policy_names | stats_names) - _BASE_KEYWORDS)
            raise ValueError(
                f"unknown parameter {unknown[0]!r} for policy {self.name!r}; "
                f"it accepts: {', '.join(allowed) or 'no hyper-parameters'}."
            )
        return (
            {k: v for k, v in merged.items() if k in policy_names},
            {k: v for k, v in merged.items() if k in stats_names},
        )

    def default_params(self) -> dict[str, Any]:
        """Every hyper-parameter with its default value."""
        return make_policy(self.name, 2, seed=0).params


_BASE_KEYWORDS = {"seed", "stats", "constraints", "n_arms"}


_KEYWORDS: dict[type, frozenset[str]] = {}  # class -> its keywords (see _keyword_names)


def _keyword_names(cls: type) -> frozenset[str]:
    """The keyword parameters of ``cls``'s constructors, computed once per class
    (``inspect.signature`` is slow, and every restore of a stored policy asks)."""
    names = _KEYWORDS.get(cls)
    if names is None:
        names = _KEYWORDS[cls] = _signature_names(cls)
    return names


def _signature_names(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"):
                names.add(p.name)
    return frozenset(names - {"stats", "constraints"})


_SPECS = [
    PolicySpec("ucb1", UCB1, summary="UCB1 (Auer et al. 2002)"),
    PolicySpec("ucb1-tuned", UCB1Tuned, summary="UCB1 with per-arm variance"),
    PolicySpec("kl-ucb", KLUCB, summary="KL-UCB for Bernoulli rewards"),
    PolicySpec("bayes-ucb", BayesUCB, summary="Beta posterior quantile index"),
    PolicySpec("thompson", BetaThompson, summary="Beta-Bernoulli Thompson sampling"),
    PolicySpec(
        "gaussian-thompson",
        GaussianThompson,
        summary="Thompson sampling, unknown mean and variance",
    ),
    PolicySpec(
        "epsilon-greedy", EpsilonGreedy, summary="uniform with probability epsilon, else greedy"
    ),
    PolicySpec("softmax", Softmax, summary="Boltzmann exploration"),
    PolicySpec("exp3", Exp3, summary="exponential weights (adversarial)"),
    PolicySpec(
        "top-two-thompson", TopTwoThompson, summary="top-two Thompson sampling (Russo 2016)"
    ),
    PolicySpec(
        "discounted-thompson",
        BetaThompson,
        DiscountedStats,
        {"gamma": 0.99995},
        "Thompson sampling on discounted counts (Raj & Kalyani 2017)",
    ),
    PolicySpec(
        "discounted-ucb",
        UCB1,
        DiscountedStats,
        {"gamma": 0.99995, "alpha": 0.1},
        "UCB on discounted counts (Garivier & Moulines 2011)",
    ),
    PolicySpec(
        "sliding-window-thompson",
        BetaThompson,
        SlidingWindowStats,
        {"window": 20_000},
        "Thompson sampling on the last `window` observations",
    ),
    PolicySpec(
        "sliding-window-ucb",
        UCB1,
        SlidingWindowStats,
        {"window": 20_000, "alpha": 0.1},
        "UCB on the last `window` observations (Garivier & Moulines 2011)",
    ),
    PolicySpec(
        "discounted-kl-ucb",
        KLUCB,
        DiscountedStats,
        {"gamma": 0.99998},
        "KL-UCB on discounted counts",
    ),
    PolicySpec(
        "sliding-window-kl-ucb",
        KLUCB,
        SlidingWindowStats,
        {"window": 50_000},
        "KL-UCB on the last `window` observations",
    ),
    PolicySpec(
        "glr-thompson",
        BetaThompson,
        ChangePointStats,
        {},
        "Thompson sampling restarted by a GLR change-point test (Besson et al. 2022)",
    ),
]

REGISTRY: dict[str, PolicySpec] = {spec.name: spec for spec in _SPECS}
#: Names accepted by :func:`make_policy`.
POLICIES: tuple[str, ...] = tuple(REGISTRY)


def make_policy(
    name: str,
    n_arms: int,
    *,
    seed: int | None = None,
    burn_in: int = 0,
    floors: float | Sequence[float] | None = None,
    caps: float | Sequence[float] | None = None,
    control_arm: int | None = None,
    control_share: float = 0.0,
    **params: Any,
) -> Policy:
    """Build the policy registered as ``name`` over ``n_arms`` arms.

    ``params`` are the policy's hyper-parameters (see ``POLICIES`` and
    ``REGISTRY[name].default_params()``); the other keywords are the allocation controls of
    :class:`bandit.allocation.Constraints`.

    >>> p = make_policy("discounted-thompson", 3, seed=7, gamma=0.99)
    >>> p.params["gamma"], p.n_arms
    (0.99, 3)
    >>> make_policy("thompson", 3, gamma=0.99)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter 'gamma' for policy 'thompson'; it accepts: ...
    """
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"name {name!r} is not a policy; choose one of: {', '.join(POLICIES)}.")
    spec = REGISTRY[name]
    from bandit.validation import check_scalar

    n = int(check_scalar(n_arms, "n_arms", kind=int, min_val=1))
    policy_kwargs, stats_kwargs = spec.split(params)
    constraints = Constraints.build(
        n,
        floors=floors,
        caps=caps,
        control_arm=control_arm,
        control_share=control_share,
        burn_in=burn_in,
    )
    policy = spec.policy(
        n,
        seed=seed,
        stats=spec.stats(n, **stats_kwargs),
        constraints=constraints,
        **policy_kwargs,
    )
    policy.name = name
    return policy


def from_state_dict(state: dict[str, Any]) -> Policy:
    """Rebuild any registered policy from its :meth:`Policy.state_dict`, exactly."""
    try:
        name, n_arms = state["policy"], int(state["n_arms"])
        policy = make_policy(
            name,
            n_arms,
            seed=int(state["seed"]),
            **state["constraints"],
            **state["params"],
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"state is not a policy state_dict: missing or bad {exc}.") from exc
    policy.load_state_dict(state)
    return policy
