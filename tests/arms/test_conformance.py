"""One conformance check over every registered arm (shapes, determinism, persistence, errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from arms import ARMS, Arm, BaseArm, NotFittedError, UnknownItemError, load_arm, make_arm
from arms.data import Interactions, ItemCatalog


def params_for(name: str, cache: str) -> dict[str, Any]:
    params: dict[str, Any] = {"device": "cpu", "seed": 7}
    if name == "mf":
        params.update(factors=8, iterations=5)
    if name == "bert":
        params.update(cache_dir=cache)
    return params


@pytest.fixture(scope="module", params=ARMS)
def fitted(
    request: pytest.FixtureRequest,
    interactions: Interactions,
    catalog: ItemCatalog,
    embedding_cache: str,
) -> BaseArm:
    return make_arm(request.param, **params_for(request.param, embedding_cache)).fit(
        interactions, catalog
    )


USERS = [0, 1, 2, 5, 23]
ITEMS = [100, 101, 135, 120]


def test_registry_lists_the_six_arms() -> None:
    assert ARMS == ("mf", "bert", "popularity", "item-knn", "random", "ease")
    with pytest.raises(ValueError, match="name"):
        make_arm("nope")


def test_protocol_and_name(fitted: BaseArm) -> None:
    assert isinstance(fitted, Arm)
    assert fitted.name in ARMS
    assert fitted.cold_start, "every arm documents its cold-start fallback"
    assert fitted.device_ == torch.device("cpu")


def test_score_shape_and_dtype(fitted: BaseArm) -> None:
    scores = fitted.score(USERS, ITEMS)
    assert scores.shape == (len(USERS), len(ITEMS))
    assert scores.dtype == torch.float32
    assert torch.isfinite(scores).all()


def test_top_k_matches_score_and_excludes_seen(fitted: BaseArm, catalog: ItemCatalog) -> None:
    ids, vals = fitted.top_k(USERS, k=5)
    assert ids.shape == vals.shape == (len(USERS), 5)
    assert ids.dtype == torch.int64 and vals.dtype == torch.float32
    assert (vals[:, :-1] >= vals[:, 1:]).all(), "best first"
    full = fitted.score(USERS, catalog.item_ids)
    for row, user in enumerate(USERS):
        seen = set(fitted.seen_items(user).tolist())
        assert seen and not seen & set(ids[row].tolist())
        unseen = [j for j, i in enumerate(catalog.item_ids) if i not in seen]
        best = full[row, unseen].sort(descending=True).values[:5]
        torch.testing.assert_close(vals[row], best, rtol=1e-5, atol=1e-5)
        pos = np.searchsorted(catalog.item_ids, ids[row].numpy())
        torch.testing.assert_close(full[row, pos], vals[row], rtol=1e-5, atol=1e-5)


def test_exclude_seen_false_can_return_seen(fitted: BaseArm, catalog: ItemCatalog) -> None:
    ids, _ = fitted.top_k([0], k=len(catalog), exclude_seen=False)
    assert sorted(ids[0].tolist()) == sorted(catalog.item_ids.tolist())


def test_empty_slots_when_fewer_unseen_than_k(fitted: BaseArm, catalog: ItemCatalog) -> None:
    ids, vals = fitted.top_k([0], k=len(catalog))
    n_seen = len(fitted.seen_items(0))
    assert (ids[0, -n_seen:] == -1).all() and torch.isneginf(vals[0, -n_seen:]).all()
    assert (ids[0, :-n_seen] >= 0).all()


def test_blocking_does_not_change_results(
    interactions: Interactions, catalog: ItemCatalog, embedding_cache: str, fitted: BaseArm
) -> None:
    params = params_for(fitted.name, embedding_cache) | {"user_block": 2, "item_block": 5}
    small = make_arm(fitted.name, **params).fit(interactions, catalog)
    users = list(range(24))
    torch.testing.assert_close(
        small.top_k(users, 7)[1], fitted.top_k(users, 7)[1], rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        small.score(users, catalog.item_ids),
        fitted.score(users, catalog.item_ids),
        rtol=1e-5,
        atol=1e-5,
    )


def test_seeded_fit_is_deterministic(
    interactions: Interactions, catalog: ItemCatalog, embedding_cache: str, fitted: BaseArm
) -> None:
    again = make_arm(fitted.name, **params_for(fitted.name, embedding_cache)).fit(
        interactions, catalog
    )
    assert torch.equal(again.score(USERS, catalog.item_ids), fitted.score(USERS, catalog.item_ids))
    assert torch.equal(again.top_k(USERS, 4)[0], fitted.top_k(USERS, 4)[0])


def test_save_load_round_trip(fitted: BaseArm, catalog: ItemCatalog, tmp_path: Path) -> None:
    fitted.save(tmp_path / "arm")
    assert sorted(p.name for p in (tmp_path / "arm").iterdir()) == ["arm.json", "state.safetensors"]
    for loaded in (
        load_arm(tmp_path / "arm", device="cpu"),
        type(fitted).load(tmp_path / "arm", device="cpu"),
    ):
        assert type(loaded) is type(fitted)
        assert torch.equal(
            loaded.score([*USERS, 999], catalog.item_ids),
            fitted.score([*USERS, 999], catalog.item_ids),
        )
        assert torch.equal(loaded.top_k(USERS, 6)[0], fitted.top_k(USERS, 6)[0])


def test_load_refuses_another_arms_folder(fitted: BaseArm, tmp_path: Path) -> None:
    fitted.save(tmp_path / "arm")
    other = next(cls for cls in ARMS if cls != fitted.name)
    with pytest.raises(ValueError, match="path holds"):
        type(make_arm(other, device="cpu")).load(tmp_path / "arm")


def test_cold_start_user_gets_fallback(fitted: BaseArm, catalog: ItemCatalog) -> None:
    scores = fitted.score([10_000, 10_001], catalog.item_ids)
    assert torch.isfinite(scores).all()
    if fitted.name != "random":
        assert torch.equal(scores[0], scores[1]), "one fallback for every unknown user"
    ids, _ = fitted.top_k([10_000], k=len(catalog))
    assert (ids >= 0).all(), "nothing is excluded for an unknown user"


def test_unknown_item_is_a_clear_error(fitted: BaseArm) -> None:
    with pytest.raises(UnknownItemError, match="item_ids"):
        fitted.score([0], [100, 5])
    with pytest.raises(ValueError, match="item_ids"):
        fitted.score([0], [[100]])


@pytest.mark.parametrize("k", [0, -1, 1.5, True, 37])
def test_bad_k_is_a_clear_error(fitted: BaseArm, k: Any) -> None:
    with pytest.raises(ValueError, match="k must"):
        fitted.top_k([0], k=k)


def test_bad_user_ids_are_a_clear_error(fitted: BaseArm) -> None:
    with pytest.raises(ValueError, match="user_ids"):
        fitted.top_k(np.array([0.5]), k=1)


@pytest.mark.parametrize("name", ARMS)
def test_unfitted_arm_refuses_to_score(name: str, tmp_path: Path) -> None:
    arm = make_arm(name, device="cpu")
    with pytest.raises(NotFittedError):
        arm.score([0], [0])
    with pytest.raises(NotFittedError):
        arm.save(tmp_path)


@pytest.mark.parametrize("name", ARMS)
def test_bad_constructor_arguments(name: str) -> None:
    with pytest.raises(ValueError, match="item_block"):
        make_arm(name, item_block=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            make_arm(name, device="cuda")


@pytest.mark.parametrize("name", ARMS)
def test_fit_rejects_bad_input(name: str) -> None:
    arm = make_arm(name, device="cpu")
    with pytest.raises(ValueError, match="interactions"):
        arm.fit(Interactions([], []))
    with pytest.raises(ValueError, match="interactions"):
        arm.fit([(0, 1)])  # type: ignore[arg-type]
