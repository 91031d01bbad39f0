"""Synthetic bandit experiments and offline evaluation.

``envs`` (environments and their pre-drawn reward tables), ``runner`` (policies x environments
x seeds in worker processes, flat rows), ``report`` (summaries, row files, regret plots),
``experiment`` (all of it into one output directory) and ``peers`` (river and MABWiser
adapters for the benchmarks). Offline evaluation: ``logged`` (the logged-feedback
container), ``obd`` and ``service_log`` (loaders), ``ope`` (estimators), ``replay``,
``offline`` and ``offline_report`` (candidates x estimators), ``synthetic_logs``.
``movielens`` is the MovieLens-100K fusion simulation: the arms' ranked lists fused by the bandit
and clicked by simulated users. Submodules are imported on use, so ``import simulations`` is cheap.
"""
