"""MovieLens-100K fusion simulation: the arms' ranked lists, fused by the bandit, clicked by
a position-based model built from held-out ratings.

``data`` (train the arms on a per-user temporal split, cache each arm's top-N candidates per
user on disk), ``clicks`` (position-based click model with consumption and fatigue), ``env``
(scenarios, arrivals and click uniforms shared by every policy of a seed), ``policies`` (each
arm alone, fixed-weight fusion, bandit allocation, bandit fusion, segmented fusion, phase
oracle), ``run`` (one run, the grid, tuning of the fixed weights), ``summary`` (paired
comparisons), ``plots`` and ``experiment`` (all of it into one output directory), and
``evaluate`` (offline ranking metrics of fixed-weight fusions).
"""
