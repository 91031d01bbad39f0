"""Run the docstring examples of the simulations modules and the simulate CLI."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "simulations.envs",
    "simulations.runner",
    "simulations.report",
    "simulations.parallel",
    "cli.simulate",
    "simulations.movielens.run",
    "simulations.movielens.plots",
    "simulations.movielens.evaluate",
    "cli.fusion_eval",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
