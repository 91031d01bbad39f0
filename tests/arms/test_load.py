"""``BaseArm.load`` rejects a saved state whose tensor shapes do not fit its ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from arms.data import Interactions, ItemCatalog
from arms.knn import ItemKNNArm
from arms.popularity import PopularityArm


def _tamper(folder: Path, key: str, value: torch.Tensor) -> None:
    file = folder / "state.safetensors"
    state = load_file(str(file))
    state[key] = value
    save_file(state, str(file))


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("arm.scores", torch.zeros(3)),  # the catalogue has more items
        ("base.seen_indptr", torch.zeros(2, dtype=torch.int64)),
        ("base.seen_indices", torch.zeros(1, dtype=torch.int64)),
    ],
)
def test_load_rejects_wrong_shapes(
    tmp_path: Path,
    interactions: Interactions,
    catalog: ItemCatalog,
    key: str,
    bad: torch.Tensor,
) -> None:
    arm = PopularityArm(device="cpu").fit(interactions, catalog)
    arm.save(tmp_path)
    PopularityArm.load(tmp_path, device="cpu")  # untouched: loads
    _tamper(tmp_path, key, bad)
    with pytest.raises(ValueError, match=rf"state\.safetensors: field '{re.escape(key)}'"):
        PopularityArm.load(tmp_path, device="cpu")


def test_load_rejects_wrong_knn_popularity(
    tmp_path: Path, interactions: Interactions, catalog: ItemCatalog
) -> None:
    ItemKNNArm(device="cpu").fit(interactions, catalog).save(tmp_path)
    _tamper(tmp_path, "arm.popularity", torch.zeros(len(catalog) + 1))
    with pytest.raises(ValueError, match=r"'arm\.popularity' has shape"):
        ItemKNNArm.load(tmp_path, device="cpu")
