"""Open Bandit Pipeline's own answer on the OBD sample; run with a Python that has ``obp``.

Not part of bandit-fusion (obp 0.5.7 needs Python < 3.11 and pins old numpy/scikit-learn, so
it lives in a throwaway environment). ``benchmarks/ope_obd.py`` runs this script as a
subprocess and compares. It follows obp's quick start (``examples/quickstart/obd.ipynb``):
BernoulliTS with the ZOZOTOWN prior, ``compute_batch_action_dist(n_sim=100_000)``, a
LogisticRegression reward model with 3-fold cross-fitting, then IPW, SNIPW, DM and DR. It
also evaluates IPW and SNIPW on a given action distribution (``--dist``, ``(80, 3)`` .npy) so
both implementations can be compared on identical inputs.

Usage: python obp_reference.py OBD_ROOT OUT_DIR [--dist ours.npy]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(root: str, out: str, dist_file: str | None) -> None:
    t0 = time.perf_counter()
    from obp.dataset import OpenBanditDataset
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        RegressionModel,
        SelfNormalizedInverseProbabilityWeighting,
    )
    from obp.policy import BernoulliTS
    from sklearn.linear_model import LogisticRegression

    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    dataset = OpenBanditDataset(behavior_policy="random", campaign="all", data_path=Path(root))
    feedback = dataset.obtain_batch_bandit_feedback()
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    policy = BernoulliTS(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        is_zozotown_prior=True,
        campaign="all",
        random_state=12345,
    )
    action_dist = policy.compute_batch_action_dist(n_sim=100_000, n_rounds=feedback["n_rounds"])
    t_dist = time.perf_counter() - t
    t = time.perf_counter()
    model = RegressionModel(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        action_context=dataset.action_context,
        base_model=LogisticRegression(max_iter=1000, random_state=12345),
    )
    q_hat = model.fit_predict(
        context=feedback["context"],
        action=feedback["action"],
        reward=feedback["reward"],
        position=feedback["position"],
        pscore=feedback["pscore"],
        n_folds=3,
        random_state=12345,
    )
    t_model = time.perf_counter() - t
    t = time.perf_counter()
    ope = OffPolicyEvaluation(
        bandit_feedback=feedback,
        ope_estimators=[
            InverseProbabilityWeighting(),
            SelfNormalizedInverseProbabilityWeighting(),
            DirectMethod(),
            DoublyRobust(),
        ],
    )
    estimates = ope.estimate_policy_values(
        action_dist=action_dist, estimated_rewards_by_reg_model=q_hat
    )
    intervals = ope.estimate_intervals(
        action_dist=action_dist,
        estimated_rewards_by_reg_model=q_hat,
        n_bootstrap_samples=1000,
        random_state=12345,
    )
    t_estimate = time.perf_counter() - t
    result: dict[str, object] = {
        "obp_version": __import__("obp").__version__,
        "estimates": {k: float(v) for k, v in estimates.items()},
        "intervals": {k: {kk: float(vv) for kk, vv in v.items()} for k, v in intervals.items()},
        "seconds": {
            "import": t_import,
            "load": t_load,
            "action_dist_monte_carlo": t_dist,
            "reward_model": t_model,
            "estimators_and_bootstrap": t_estimate,
            "total_without_import": t_load + t_dist + t_model + t_estimate,
        },
        "on_policy_bts": float(
            OpenBanditDataset(behavior_policy="bts", campaign="all", data_path=Path(root))
            .obtain_batch_bandit_feedback()["reward"]
            .mean()
        ),
    }
    np.save(Path(out) / "obp_action_dist.npy", action_dist[0])
    if dist_file is not None:
        ours = np.load(dist_file)
        tiled = np.tile(ours, (feedback["n_rounds"], 1, 1))
        same = OffPolicyEvaluation(
            bandit_feedback=feedback,
            ope_estimators=[
                InverseProbabilityWeighting(),
                SelfNormalizedInverseProbabilityWeighting(),
            ],
        ).estimate_policy_values(action_dist=tiled)
        result["on_given_dist"] = {k: float(v) for k, v in same.items()}
    (Path(out) / "obp_reference.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    args = sys.argv[1:]
    given = None
    if "--dist" in args:
        i = args.index("--dist")
        given = args[i + 1]
        del args[i : i + 2]
    main(args[0], args[1], given)
