"""Peer-library adapters (river, MABWiser) play through the runner on the same reward tables."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.envs import Delayed, Stationary
from simulations.peers import PEERS, make_peer
from simulations.runner import PolicySpec, run_one

pytest.importorskip("river")
pytest.importorskip("mabwiser")

ENV = Stationary((0.1, 0.9), 1_000)


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peers_learn_the_best_arm(name: str) -> None:
    result = run_one(ENV, PolicySpec(name), seed=0)
    assert result.final_regret < 0.8 * 1_000 / 2 / 4  # well below uniform play (400)
    assert result.arms[-100:].mean() > 0.9


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peers_take_delayed_batches(name: str) -> None:
    result = run_one(Delayed(ENV, 50), PolicySpec(name), seed=1)
    assert result.steps[-1] == 1_000 and result.final_regret < 200


def test_peer_batch_selection_and_errors() -> None:
    peer = make_peer("mabwiser-thompson", n_arms=3, seed=0)
    first = peer.select_batch(4)
    assert first.arms.tolist() == [0, 1, 2, 0]  # round-robin before the first fit
    assert np.isnan(first.propensities).all()  # peers do not report propensities
    peer.update_batch(np.array([0, 1]), np.array([1.0, 0.0]))
    assert peer.select_batch(5).arms.shape == (5,)
    assert make_peer("river-ucb", n_arms=3, seed=0).select_batch(3).arms.shape == (3,)
    with pytest.raises(ValueError, match="unknown peer policy 'river-exp3'"):
        make_peer("river-exp3", n_arms=3, seed=0)
