"""Bandit experiments: seeded environments, a parallel runner, summaries and plots.

``envs`` (environments and their pre-drawn reward tables), ``runner`` (policies x environments
x seeds in worker processes, flat rows), ``report`` (summaries, row files, regret plots),
``experiment`` (all of it into one output directory) and ``peers`` (river and MABWiser
adapters for the benchmarks).  ``movielens`` is the MovieLens-100K fusion simulation: the
arms' ranked lists fused by the bandit and clicked by simulated users.  Submodules are
imported on use, so ``import simulations`` is cheap.
"""
