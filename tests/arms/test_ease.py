"""The EASE arm: the closed form, the regularisation chosen on validation, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from arms import load_arm
from arms.data import Interactions, ItemCatalog
from arms.ease import EASEArm


def _numpy_ease(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck (2019), eq. 8, written directly in float64."""
    g = x.T @ x + lam * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_equals_a_direct_numpy_solution() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((30, 12)) < 0.3).astype(np.float64)
    x[0, :] = 1.0  # every item seen at least once
    users, items = np.nonzero(x)
    inter = Interactions(users, items + 50)
    arm = EASEArm(regularization=3.0, device="cpu").fit(inter)
    expected = _numpy_ease(x, 3.0)
    np.testing.assert_allclose(arm.weights_.numpy(), expected, rtol=1e-4, atol=1e-5)
    scores = arm.score(np.arange(30), np.arange(50, 62)).numpy()
    np.testing.assert_allclose(scores, x @ expected, rtol=1e-4, atol=1e-5)  # + tie-break < 1e-6
    ids, _ = arm.top_k([1, 2], k=3)
    for row, user in enumerate([1, 2]):
        masked = np.where(x[user] > 0, -np.inf, x[user] @ expected)
        assert set(ids[row].tolist()) == set((np.argsort(-masked)[:3] + 50).tolist())


def test_regularization_is_chosen_on_validation_and_recorded(
    interactions: Interactions, catalog: ItemCatalog, tmp_path: Path
) -> None:
    grid = (1.0, 30.0, 1000.0)
    arm = EASEArm(regularization_grid=grid, device="cpu").fit(interactions, catalog)
    assert arm.regularization is None and arm.regularization_ in grid
    arm.save(tmp_path / "ease")
    meta = json.loads((tmp_path / "ease" / "arm.json").read_text())
    assert meta["fitted"] == {"regularization": arm.regularization_}
    again = load_arm(tmp_path / "ease")
    assert isinstance(again, EASEArm) and again.regularization_ == arm.regularization_
    torch.testing.assert_close(
        again.score([0, 3], catalog.item_ids), arm.score([0, 3], catalog.item_ids)
    )


def test_bad_regularization_names_the_field() -> None:
    with pytest.raises(ValueError, match="regularization"):
        EASEArm(regularization=0.0)
    with pytest.raises(ValueError, match="regularization_grid"):
        EASEArm(regularization_grid=())
