"""Synthetic bandit experiments: seeded environments, a parallel runner, summaries and plots.

``envs`` (environments and their pre-drawn reward tables), ``runner`` (policies x environments
x seeds in worker processes, flat rows), ``report`` (summaries, row files, regret plots),
``experiment`` (all of it into one output directory) and ``peers`` (river and MABWiser
adapters for the benchmarks).  Submodules are imported on use, so ``import simulations`` is
cheap.
"""
