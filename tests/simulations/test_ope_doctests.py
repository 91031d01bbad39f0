"""Run the docstring examples of the offline-evaluation modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "simulations.logged",
    "simulations.synthetic_logs",
    "simulations.ope",
    "simulations.ope.base",
    "simulations.ope.estimators",
    "simulations.ope.policies",
    "bandit.ranking",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
