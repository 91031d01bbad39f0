"""MovieLens fusion simulation: consumption, common random numbers, phases, summaries, and a
small run on the real data where bandit fusion beats uniform fusion."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from simulations.movielens import run as run_module
from simulations.movielens.clicks import ClickModel, ClickState
from simulations.movielens.data import World
from simulations.movielens.env import make_env
from simulations.movielens.experiment import run_fusion_experiment
from simulations.movielens.policies import (
    BanditAllocation,
    BanditFusion,
    FusionPolicy,
    default_policies,
)
from simulations.movielens.run import run_one, simplex_grid, truncate
from simulations.movielens.summary import summarize_fusion

REPO = Path(__file__).resolve().parents[2]
ML100K = Path(os.environ.get("ML100K_DIR", REPO / ".." / "shared" / "data" / "ml-100k")).resolve()


def tiny_world(
    scenario: str = "main", n_users: int = 30, n_items: int = 120, seed: int = 0
) -> World:
    """Three arms over a small catalogue: arm 0 ranks the users' liked items first, arm 1
    ranks them a little lower, arm 2 ranks at random."""
    rng = np.random.default_rng(seed)
    liked = [rng.choice(n_items, size=12, replace=False) for _ in range(n_users)]
    lists = []
    for quality in (1.0, 0.5, 0.0):
        rows = []
        for u in range(n_users):
            score = rng.random(n_items) + quality * np.isin(np.arange(n_items), liked[u])
            rows.append(np.argsort(-score)[:60])
        lists.append(np.stack(rows))
    names: tuple[str, ...] = ("good", "fair", "random")
    if scenario == "drift":
        lists.append(lists[2].copy())
        names = (*names, "good-stale")
    arr = np.stack(lists).astype(np.int32)
    test_users = np.repeat(np.arange(n_users), 12)
    return World(
        scenario=scenario,
        arm_names=names,
        lists=arr,
        scores=-np.broadcast_to(np.arange(60, dtype=np.float32), arr.shape).copy(),
        user_ids=np.arange(1, n_users + 1),
        item_ids=np.arange(1, n_items + 1),
        test_users=test_users,
        test_items=np.concatenate(liked),
        test_ratings=np.full(test_users.size, 5.0, dtype=np.float32),
        history_users=np.zeros(0, dtype=np.int64),
        history_items=np.zeros(0, dtype=np.int64),
        train_counts=rng.integers(1, 50, size=n_users),
        cold=np.zeros(n_users, dtype=bool),
        genres=rng.random((n_items, 3)) < 0.3,
    )


class Recording(ClickState):
    """A click state that keeps every shown list and its clicks."""

    log: ClassVar[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = []

    def show(self, users: np.ndarray, items: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        clicks = super().show(users, items, uniforms)
        Recording.log.append((users.copy(), items.copy(), clicks.copy()))
        return clicks


def test_a_clicked_item_never_reappears_for_that_user(monkeypatch) -> None:
    monkeypatch.setattr(run_module, "ClickState", Recording)
    Recording.log = []
    env = make_env("movielens", tiny_world(), 600, max_batch=10)
    result = run_one(env, FusionPolicy("fusion", "fusion", policy="thompson"), seed=3)
    assert result.clicks.sum() > 50  # the test means something only with many clicks
    clicked: set[tuple[int, int]] = set()
    for users, items, clicks in Recording.log:
        for u, row, hit in zip(users.tolist(), items.tolist(), clicks, strict=True):
            shown = {(u, i) for i in row}
            assert not shown & clicked, "a consumed item was shown again"
            assert len(set(row)) == len(row)
            clicked |= {(u, i) for i, h in zip(row, hit, strict=True) if h}


def test_click_state_refuses_consumed_items_and_counts_ignored_examinations() -> None:
    world = tiny_world()
    state = ClickState(ClickModel(k=2, fatigue=0.5), ClickModel(k=2).attraction_table(world))
    users = np.array([0])
    liked = world.test_items[world.test_users == 0][:2]
    items = liked[None, :].astype(np.int64)
    clicks = state.show(users, items, np.array([[0.0, 0.99]], dtype=np.float32))
    assert clicks.tolist() == [[True, False]]
    assert state.ignored[0, liked[1]] == 0  # 0.99 > examination of position 1: not examined
    with pytest.raises(ValueError, match="consumed"):
        state.show(users, items, np.zeros((1, 2), dtype=np.float32))
    before = state.click_probability(users, liked[None, 1:])
    state.show(users, liked[None, 1:], np.array([[0.9]], dtype=np.float32))  # examined, ignored
    after = state.click_probability(users, liked[None, 1:])
    assert after[0, 0] == pytest.approx(0.5 * before[0, 0])


def test_policies_of_one_seed_share_users_and_uniforms() -> None:
    env = make_env("movielens", tiny_world(), 400, max_batch=16)
    a, b = env.requests(5), env.requests(5)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.uniforms, b.uniforms)
    assert not np.array_equal(a.users, env.requests(6).users)
    for lo, hi in zip(a.bounds[:-1], a.bounds[1:], strict=True):
        assert np.unique(a.users[lo:hi]).size == hi - lo  # no user twice in a micro-batch
    single = run_one(env, FusionPolicy("arm:good", "single", arm=0), 5)
    fused = run_one(env, FusionPolicy("uniform", "fixed"), 5)
    assert np.array_equal(single.users, fused.users)
    again = run_one(env, FusionPolicy("uniform", "fixed"), 5)
    assert np.array_equal(fused.clicks, again.clicks)  # seeded: the same run twice
    # Same uniforms: a list identical to another policy's at a request gets the same clicks.
    assert not np.array_equal(single.clicks, fused.clicks)


def test_drift_goes_stale_and_adds_an_arm_through_add_arm() -> None:
    world = tiny_world("drift")
    env = make_env("movielens-drift", world, 400, new_arm="fair", max_batch=20)
    assert env.initial_arms == ("good", "random")
    assert [p.names for p in env.phases] == [
        ("good", "random"),
        ("good-stale", "random"),
        ("good-stale", "random", "fair"),
    ]
    result = run_one(env, FusionPolicy("f", "fusion", policy="discounted-thompson"), 0)
    assert np.isnan(result.weights[:300, 2]).all() and not np.isnan(result.weights[300:, 2]).any()
    assert np.allclose(result.weights[300:].sum(axis=1), 1.0)
    head = truncate(env, 250)
    assert head.horizon == 250 and len(head.phases) == 2 and head.phases[-1].stop == 250


def test_request_credit_learns_from_one_observation_per_request_and_arm() -> None:
    env = make_env("movielens", tiny_world(), 400, max_batch=20)
    for kind in ("fusion", "allocation"):
        slot = FusionPolicy("slot", kind, policy="thompson").build(env, 0)
        request = FusionPolicy("request", kind, policy="thompson", credit="request").build(env, 0)
        assert isinstance(slot, BanditFusion | BanditAllocation)
        assert isinstance(request, BanditFusion | BanditAllocation)
        users = np.arange(20)
        state = ClickState(env.clicks, env.clicks.attraction_table(env.world))
        cands = env.candidates(env.phases[0], users, state.consumed, state.consumed_count)
        decision = slot.decide(0, users, cands)
        clicks = state.show(users, decision.items, env.requests(0).uniforms[:20])
        slot.learn(users, decision, clicks)
        request.learn(users, decision, clicks)
        n_sources = sum(len(set(row.tolist())) for row in decision.source)
        assert slot.policy.counts.sum() == 20 * env.k
        assert request.policy.counts.sum() == n_sources < 20 * env.k
    with pytest.raises(ValueError, match="credit"):
        FusionPolicy("bad", "fusion", credit="slots").build(env, 0)  # type: ignore[arg-type]


def test_world_cache_key_follows_the_arms_full_settings() -> None:
    """Lists cached under other arm defaults must not be read back: the key holds each arm's
    full constructor arguments, defaults included."""
    from simulations.movielens.data import _arm_config

    plain = _arm_config(("mf", "popularity"), 0, {})
    tuned = _arm_config(("mf", "popularity"), 0, {"mf": {"factors": 8}})
    assert "factors=8" in tuned[0] and "factors=8" not in plain[0]
    assert plain[1] == tuned[1] and plain != tuned


def test_simplex_grid_covers_the_corners_and_the_centre() -> None:
    grid = simplex_grid(3, 3)
    assert grid.shape == (10, 3) and np.allclose(grid.sum(axis=1), 1.0)
    assert any(np.allclose(row, 1 / 3) for row in grid)


def test_summary_pairs_every_policy_with_the_best_single_arm() -> None:
    env = make_env("movielens", tiny_world(), 500, max_batch=20)
    specs = [s for s in default_policies(env) if s.kind in ("single", "fixed", "fusion")][:5]
    runs = [run_one(env, spec, seed) for seed in (0, 1, 2) for spec in specs]
    rows = {r["policy"]: r for r in summarize_fusion(runs)}
    assert all(r["reference"] == "arm:good" for r in rows.values())
    assert rows["arm:good"]["diff_to_reference"]["mean"] == 0.0
    mine = [r.clicks_per_request for r in runs if r.policy == "uniform-fusion"]
    ref = [r.clicks_per_request for r in runs if r.policy == "arm:good"]
    assert rows["uniform-fusion"]["diff_to_reference"]["mean"] == pytest.approx(
        np.mean(np.subtract(mine, ref))
    )
    low, high = (rows["uniform-fusion"]["clicks_per_request"][k] for k in ("low", "high"))
    assert low <= np.mean(mine) <= high


def test_experiment_tunes_runs_and_writes_its_files(tmp_path) -> None:
    env = make_env("movielens", tiny_world(), 300, max_batch=20)
    result = run_fusion_experiment(
        [env],
        [0, 1],
        tmp_path / "out",
        policies=["arm:good", "best-fixed-fusion", "fusion-thompson"],
        tune_seeds=[99],
        weight_steps=2,
        cache_dir=tmp_path / "cache",
        jobs=1,
        record_every=10,
        fmt="csv",
        progress=False,
    )
    summary = json.loads(result.summary_path.read_text())
    assert summary["tuned"]["movielens"]["best_fixed_weights"][0] > 0  # the good arm is used
    assert {r["policy"] for r in summary["results"]} == {
        "arm:good",
        "best-fixed-fusion",
        "fusion-thompson",
    }
    assert result.rows_written == 3 * 2 * 30
    assert all(p.stat().st_size > 0 for p in result.plots)
    with pytest.raises(ValueError, match="tune_seeds"):
        run_fusion_experiment([env], [99], tmp_path / "x", tune_seeds=[99], progress=False)


@pytest.fixture(scope="module")
def ml100k() -> Path:
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens-100K not found at {ML100K}")
    return ML100K


@pytest.mark.data
@pytest.mark.slow
def test_bandit_fusion_beats_uniform_fusion_on_movielens(ml100k, tmp_path) -> None:
    from simulations.movielens.data import build_world

    world = build_world(ml100k, arms=("item-knn", "popularity", "random"), cache_dir=tmp_path)
    env = make_env("movielens", world, 4000)
    diffs = []
    for seed in range(3):
        fused = run_one(env, FusionPolicy("fusion", "fusion", policy="thompson"), seed)
        uniform = run_one(env, FusionPolicy("uniform", "fixed"), seed)
        diffs.append(fused.clicks_per_request - uniform.clicks_per_request)
    assert min(diffs) > 0.01, diffs
    # the second build reads the cache
    assert (
        build_world(
            ml100k, arms=("item-knn", "popularity", "random"), cache_dir=tmp_path
        ).lists.shape
        == world.lists.shape
    )


@pytest.mark.data
@pytest.mark.slow
def test_fusion_with_one_hot_weights_scores_like_the_arm_alone(ml100k) -> None:
    from arms import load_dataset, make_arm, temporal_split
    from arms.evaluate import evaluate_arm
    from simulations.movielens.evaluate import evaluate_fusions

    data = load_dataset(ml100k)
    train, test = temporal_split(data.interactions, 0.2)
    arms = [make_arm(n, device="cpu").fit(train, data.items) for n in ("item-knn", "popularity")]
    scores = evaluate_fusions(
        arms, test, data.items, fusers=["slot-mix", "weighted-rrf"], weights=[("knn", [1.0, 0.0])]
    )
    alone = evaluate_arm(arms[0], test, data.items)
    for s in scores:
        if s.weights_label == "knn":
            assert s.recall == pytest.approx(alone["recall@10"])
            assert s.ndcg == pytest.approx(alone["ndcg@10"])
        # true recall (relevant retrieved / all relevant) may fall below precision@10
        assert s.precision > 0 and s.recall > 0 and s.f1 > 0
    uniform = [s for s in scores if s.weights_label == "uniform"]
    assert len(uniform) == 2 and all(s.recall < alone["recall@10"] for s in uniform)


def test_cli_refuses_movielens_without_data_or_mixed_with_synthetic() -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    missing = runner.invoke(app, ["simulate", "--env", "movielens", "--no-progress"])
    assert missing.exit_code == 2 and "--data" in missing.output
    mixed = runner.invoke(app, ["simulate", "--env", "movielens,bernoulli", "--no-progress"])
    assert mixed.exit_code == 2 and "mixed" in mixed.output
