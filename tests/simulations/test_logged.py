"""LoggedFeedback: validation names the field; arrays are frozen copies."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.logged import LoggedFeedback

BASE = {"actions": [0, 1, 2], "rewards": [1.0, 0.0, 1.0], "propensities": [0.5, 0.25, 1.0]}


def make(**kw: object) -> LoggedFeedback:
    return LoggedFeedback(**{**BASE, "n_actions": 3, **kw})  # type: ignore[arg-type]


def test_valid_log_is_frozen_and_copied() -> None:
    actions = np.array([0, 1, 2])
    log = make(actions=actions)
    actions[0] = 2
    assert log.actions[0] == 0
    with pytest.raises(ValueError):
        log.actions[0] = 1
    assert log.positions.tolist() == [0, 0, 0]
    assert log.subset(np.array([True, False, True])).rewards.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"propensities": [0.5, 0.0, 1.0]}, "propensities"),
        ({"propensities": [0.5, 1.5, 1.0]}, "propensities"),
        ({"propensities": [0.5, 0.5]}, "propensities"),
        ({"rewards": [1.0, np.nan, 0.0]}, "rewards"),
        ({"rewards": ["a", "b", "c"]}, "rewards"),
        ({"actions": [0, 1, 3]}, "actions"),
        ({"actions": [0, 1.5, 2]}, "actions"),
        ({"positions": [0, 1, 0]}, "positions"),
        ({"n_actions": 0}, "n_actions"),
        ({"context": np.ones((2, 2))}, "context"),
        ({"logging_distribution": np.full((3, 3, 1), 0.5)}, "logging_distribution"),
        ({"cascade_propensities": [0.1, 0.0, 0.2]}, "cascade_propensities"),
    ],
)
def test_bad_input_names_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make(**kw)
