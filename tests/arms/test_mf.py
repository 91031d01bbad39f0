"""MF recovers a planted low-rank preference structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arms.data import Interactions
from arms.mf import MFArm


def planted(
    seed: int, n_users: int = 120, n_items: int = 80, n_groups: int = 4, density: float = 0.5
) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Users and items in ``n_groups`` blocks; users interact only with their block's items."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(n_users) % n_groups
    item_group = np.arange(n_items) % n_groups
    likes = (user_group[:, None] == item_group[None, :]) & (
        rng.random((n_users, n_items)) < density
    )
    u, i = np.nonzero(likes)
    return Interactions(u, i, np.arange(len(u))), user_group, item_group


@pytest.mark.parametrize("seed", range(3))
def test_mf_ranks_unseen_in_block_items_first(seed: int) -> None:
    inter, user_group, item_group = planted(seed)
    arm = MFArm(factors=8, iterations=10, regularization=1.0, device="cpu", seed=seed).fit(inter)
    users = np.arange(len(user_group))
    ids, _ = arm.top_k(users, k=5)
    in_block = item_group[ids.numpy()] == user_group[:, None]
    assert in_block.mean() >= 0.95, "recommendations stay in the user's preference block"
    scores = arm.score(users, np.arange(len(item_group)))
    same = torch.from_numpy(user_group[:, None] == item_group[None, :])
    assert scores[same].mean() > scores[~same].mean() + 0.3


def test_mf_beats_chance_on_held_out_pairs() -> None:
    inter, user_group, item_group = planted(11, density=0.6)
    rng = np.random.default_rng(0)
    held = rng.random(len(inter)) < 0.2
    arm = MFArm(factors=8, iterations=10, regularization=1.0, device="cpu").fit(inter.subset(~held))
    test_u, test_i = inter.users[held], inter.items[held]
    neg_i = rng.integers(0, len(item_group), size=len(test_u))
    neg_ok = item_group[neg_i] != user_group[test_u]
    pos = arm.score(np.arange(len(user_group)), np.arange(len(item_group)))
    auc = (pos[test_u[neg_ok], test_i[neg_ok]] > pos[test_u[neg_ok], neg_i[neg_ok]]).float().mean()
    assert auc >= 0.95


def test_from_factors_scores_are_the_dot_product() -> None:
    gen = torch.Generator().manual_seed(0)
    u, v = torch.randn(5, 3, generator=gen), torch.randn(9, 3, generator=gen)
    arm = MFArm.from_factors(u, v, device="cpu")
    torch.testing.assert_close(arm.score(range(5), range(9)), u @ v.T)
    ids, vals = arm.top_k(range(5), k=3)
    ref = (u @ v.T).topk(3)
    assert torch.equal(ids, ref.indices)
    torch.testing.assert_close(vals, ref.values)


def test_mf_validates_its_parameters() -> None:
    with pytest.raises(ValueError, match="factors"):
        MFArm(factors=0)
    with pytest.raises(ValueError, match="regularization"):
        MFArm(regularization=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        MFArm(alpha=float("nan"))
