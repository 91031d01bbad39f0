"""Fusers: contract, deduplication, diversity, determinism, credit, and every ValueError."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import FUSERS, FusedLists, make_fuser
from bandit.fusion import request_observations, slot_observations
from tests.bandit.fusion_reference import scored_reference

A, B, C, K = 3, 50, 30, 8


def _batch(seed: int = 0, catalogue: int = 60, b: int = B):
    """Overlapping lists: each arm ranks C of a small catalogue, with descending scores."""
    rng = np.random.default_rng(seed)
    items = np.stack(
        [[rng.choice(catalogue, C, replace=False) for _ in range(b)] for _ in range(A)]
    )
    scores = -np.sort(-rng.normal(size=(A, b, C)), axis=2)
    weights = rng.dirichlet(np.ones(A), size=b)
    return items, scores, weights


def _fuse(name: str, seed: int = 0, **params) -> tuple[FusedLists, np.ndarray]:
    items, scores, weights = _batch(seed)
    return make_fuser(name, k=K, **params).fuse(items, weights, scores, seed=seed), items


def test_registry_lists_every_fuser() -> None:
    assert FUSERS == ("slot-mix", "weighted-score", "weighted-rrf", "team-draft")
    assert make_fuser("weighted-rrf", k=3, c=10).params == {
        "k": 3,
        "max_per_category": None,
        "mmr_weight": None,
        "c": 10.0,
    }


@pytest.mark.parametrize("name", FUSERS)
def test_output_shapes_dedup_and_provenance(name: str) -> None:
    out, items = _fuse(name)
    assert out.items.shape == out.source.shape == out.propensity.shape == (B, K)
    assert out.credit.shape == (B, K, A)
    assert out.items.dtype == np.int64 and out.source.dtype == np.int64
    for b in range(B):
        assert len(set(out.items[b].tolist())) == K  # deduplicated across arms
        for j in range(K):
            assert out.items[b, j] in items[out.source[b, j], b]  # the source ranks it
    assert np.allclose(out.credit.sum(axis=2), 1.0)
    assert np.all((out.propensity > 0) & (out.propensity <= 1 + 1e-12) | (out.propensity == 0))
    assert np.all((out.source_prob > 0) & (out.source_prob <= 1 + 1e-12))


@pytest.mark.parametrize("name", ["slot-mix", "team-draft"])
def test_draft_source_places_its_best_unplaced_item(name: str) -> None:
    out, items = _fuse(name)
    for b in range(B):
        placed: list[int] = []
        for j in range(K):
            arm_list = items[out.source[b, j], b].tolist()
            best = next(x for x in arm_list if x not in placed)
            assert out.items[b, j] == best
            placed.append(best)
    assert np.array_equal(out.credit.argmax(axis=2), out.source)
    assert np.all(out.credit.max(axis=2) == 1.0)  # one-hot


def test_team_draft_gives_each_arm_one_pick_per_round() -> None:
    out, _ = _fuse("team-draft")
    _, _, weights = _batch(0)
    for b in range(B):
        arms = int((weights[b] > 0).sum())
        for r in range(K // arms):
            assert sorted(out.source[b, r * arms : (r + 1) * arms]) == list(range(arms))


@pytest.mark.parametrize("name", ["weighted-score", "weighted-rrf"])
def test_scored_fusers_match_a_per_request_reference(name: str) -> None:
    items, scores, weights = _batch(1)
    out = make_fuser(name, k=K).fuse(items, weights, scores)
    for b in range(B):
        ranked, credit = scored_reference(
            items[:, b].tolist(),
            weights[b].tolist(),
            K,
            scores=scores[:, b].tolist() if name == "weighted-score" else None,
        )
        assert out.items[b].tolist() == ranked
        assert np.allclose(out.credit[b], credit)
        assert np.array_equal(out.source[b], np.argmax(credit, axis=1))
    assert np.all(out.propensity == 1.0) and np.all(out.source_prob == 1.0)


def test_rrf_ties_go_to_the_smaller_item_and_credit_is_fractional() -> None:
    items = np.array([[[5, 1, 7]], [[2, 1, 8]]])
    out = make_fuser("weighted-rrf", k=3, c=1).fuse(items, [0.5, 0.5])
    # 1 is ranked second by both (0.5/3 + 0.5/3); 5 and 2 tie at 0.5/2: 2 first
    assert out.items.tolist() == [[1, 2, 5]]
    assert out.credit[0].tolist() == [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]]


def test_zero_score_items_are_credited_by_the_weights_of_the_arms_ranking_them() -> None:
    items = np.array([[[1, 2, 3]], [[3, 4, 5]]])
    scores = np.array([[[2.0, 1.0, 0.0]], [[2.0, 1.0, 0.0]]])
    out = make_fuser("weighted-score", k=3).fuse(items, [1.0, 0.0], scores)
    assert out.items.tolist() == [[1, 2, 3]]  # 3, 4 and 5 tie at 0: smallest id
    assert out.credit[0, -1].tolist() == [1.0, 0.0]  # by weight among the arms ranking it


@pytest.mark.parametrize("name", FUSERS)
def test_category_cap_holds_in_every_fuser(name: str) -> None:
    items, scores, weights = _batch(2)
    cats = np.arange(60) % 5
    out = make_fuser(name, k=K, max_per_category=2).fuse(
        items, weights, scores, seed=0, categories=cats
    )
    for b in range(B):
        assert np.bincount(cats[out.items[b]]).max() <= 2
        assert len(set(out.items[b].tolist())) == K
    as_mapping = {int(i): f"genre-{c}" for i, c in enumerate(cats)}
    again = make_fuser(name, k=K, max_per_category=2).fuse(
        items, weights, scores, seed=0, categories=as_mapping
    )
    assert np.array_equal(out.items, again.items)


def test_capped_scored_list_skips_only_items_of_full_categories() -> None:
    items = np.array([[[1, 2, 3, 4]]])
    cats = np.array([0, 0, 0, 0, 1])  # items 1, 2, 3 share a category
    out = make_fuser("weighted-rrf", k=3, max_per_category=2).fuse(items, [1.0], categories=cats)
    assert out.items.tolist() == [[1, 2, 4]]


@pytest.mark.parametrize("name", FUSERS)
def test_seeded_determinism(name: str) -> None:
    items, scores, weights = _batch(3)
    fuser = make_fuser(name, k=K)
    first = fuser.fuse(items, weights, scores, seed=7)
    second = fuser.fuse(items, weights, scores, rng=np.random.default_rng(7))
    for field in ("items", "source", "source_prob", "propensity", "credit"):
        assert np.array_equal(getattr(first, field), getattr(second, field))
    if fuser.stochastic:
        other = fuser.fuse(items, weights, scores, seed=8)
        assert not np.array_equal(first.items, other.items)


def test_zero_weight_arms_never_place_items() -> None:
    items, _, _ = _batch(4)
    for name in ("slot-mix", "team-draft"):
        out = make_fuser(name, k=K).fuse(items, [0.6, 0.0, 0.4], seed=0)
        assert not np.any(out.source == 1)


def test_slot_observations_credit_sums_to_clicks() -> None:
    out, _ = _fuse("slot-mix")
    clicks = np.random.default_rng(0).random((B, K)) < 0.2
    arms, rewards = slot_observations(out, clicks)
    assert arms.shape == rewards.shape == (B * K,)
    assert np.array_equal(arms, out.source.ravel())
    assert rewards.sum() == clicks.sum()
    per_arm = np.bincount(arms, weights=rewards, minlength=A)
    expected = [(clicks & (out.source == a)).sum() for a in range(A)]
    assert per_arm.tolist() == expected


def test_split_credit_gives_each_arm_its_share_and_sums_to_clicks() -> None:
    out, _ = _fuse("weighted-rrf")
    clicks = (np.random.default_rng(1).random((B, K)) < 0.3).astype(float)
    arms, rewards = slot_observations(out, clicks, split=True)
    assert np.isclose(rewards.sum(), clicks.sum())
    per_arm = np.bincount(arms, weights=rewards, minlength=A)
    assert np.allclose(per_arm, (out.credit * clicks[:, :, None]).sum(axis=(0, 1)))


def test_request_credit_gives_one_observation_per_request_and_source_arm() -> None:
    out, _ = _fuse("slot-mix")
    clicks = (np.random.default_rng(2).random((B, K)) < 0.3).astype(float)
    arms, rewards = request_observations(out.source, clicks, A)
    present = [sorted(set(out.source[b].tolist())) for b in range(B)]
    assert arms.tolist() == [a for row in present for a in row]  # request by request
    expected = [clicks[b, out.source[b] == a].mean() for b in range(B) for a in present[b]]
    assert np.allclose(rewards, expected)
    # the same clicks per arm as per-slot credit, in fewer observations
    slot_arms, slot_rewards = slot_observations(out, clicks)
    slots = np.stack([(out.source == a).sum(axis=1) for a in range(A)], axis=1)  # (B, A)
    weighted = np.zeros(A)
    np.add.at(
        weighted, arms, rewards * slots[np.repeat(np.arange(B), [len(p) for p in present]), arms]
    )
    assert np.allclose(weighted, np.bincount(slot_arms, weights=slot_rewards, minlength=A))
    assert arms.size < slot_arms.size
    with pytest.raises(ValueError, match="source"):
        request_observations(out.source, clicks, 2)  # arm 2 out of range
    with pytest.raises(ValueError, match="clicks"):
        request_observations(out.source, clicks[:, :-1], A)


def test_observations_feed_a_policy() -> None:
    from bandit import make_policy

    policy = make_policy("thompson", A, seed=0)
    out, _ = _fuse("slot-mix")
    arms, rewards = slot_observations(out, np.ones((B, K)))
    policy.update_batch(arms, rewards)
    assert policy.counts.sum() == B * K


# ------------------------------------------------------------------ bad input


def _good():
    items, scores, weights = _batch(5, b=4)
    return items, scores, weights


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda i, s, w: ([[[1, 2, 3]], [[1, 2]]], None, [0.5, 0.5]), "items"),  # ragged
        (lambda i, s, w: (i[0], None, w), "items"),  # 2-D
        (lambda i, s, w: (i.astype(float), None, w), "items"),
        (lambda i, s, w: (-i - 1, None, w), "items"),
        (lambda i, s, w: (np.concatenate([i[:, :, :1], i[:, :, :-1]], axis=2), s, w), "items"),
        (lambda i, s, w: (i[:, :, : K - 1], None, w), "k"),  # k > candidates
        (lambda i, s, w: (i, None, w * 2), "weights"),  # not summing to 1
        (lambda i, s, w: (i, None, w[:, :2]), "weights"),  # wrong shape
        (lambda i, s, w: (i, None, np.full_like(w, np.nan)), "weights"),
        (lambda i, s, w: (i, None, np.array([1.5, -0.5, 0.0])), "weights"),
        (lambda i, s, w: (i, np.where(s > 0, np.nan, s), w), "scores"),
        (lambda i, s, w: (i, s[:, :, :5], w), "scores"),
    ],
)
@pytest.mark.parametrize("name", FUSERS)
def test_bad_input_names_the_argument(name, change, field) -> None:
    items, scores, weights = change(*_good())
    fuser = make_fuser(name, k=K)
    if field == "scores" and not fuser.needs_scores:
        fuser.fuse(items, weights, scores, seed=0)  # scores are ignored by this fuser
        return
    with pytest.raises(ValueError, match=field):
        fuser.fuse(items, weights, scores, seed=0)


def test_other_errors_name_the_argument() -> None:
    items, _, weights = _good()
    with pytest.raises(ValueError, match="scores"):
        make_fuser("weighted-score", k=K).fuse(items, weights)
    with pytest.raises(ValueError, match="name"):
        make_fuser("borda", k=K)
    with pytest.raises(ValueError, match="unknown parameter 'c'"):
        make_fuser("slot-mix", k=K, c=3)
    with pytest.raises(ValueError, match="k"):
        make_fuser("slot-mix", k=0)
    with pytest.raises(ValueError, match="n_samples"):
        make_fuser("team-draft", k=K, n_samples=0)
    with pytest.raises(ValueError, match="c must be"):
        make_fuser("weighted-rrf", k=K, c=-1)
    with pytest.raises(ValueError, match="max_per_category"):
        make_fuser("slot-mix", k=K, max_per_category=0)
    fuser = make_fuser("slot-mix", k=K, max_per_category=1)
    with pytest.raises(ValueError, match="categories"):
        fuser.fuse(items, weights, seed=0)  # cap without categories
    with pytest.raises(ValueError, match="categories"):
        fuser.fuse(items, weights, seed=0, categories=np.zeros(3, dtype=int))  # missing items
    with pytest.raises(ValueError, match="categories"):
        fuser.fuse(items, weights, seed=0, categories={0: 1})
    with pytest.raises(ValueError, match="categories"):  # 2 categories cannot fill 8 slots
        fuser.fuse(items, weights, seed=0, categories=np.arange(60) % 2)
    out = make_fuser("slot-mix", k=K).fuse(items, weights, seed=0)
    with pytest.raises(ValueError, match="rng"):
        make_fuser("slot-mix", k=K).fuse(items, weights, seed=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="clicks"):
        slot_observations(out, np.ones((4, K + 1)))
    with pytest.raises(ValueError, match="clicks"):
        slot_observations(out, np.full((4, K), 2.0))


@pytest.mark.parametrize("name", ["weighted-score", "weighted-rrf"])
def test_sparse_item_ids_give_the_same_lists_as_dense_ones(name: str) -> None:
    """Small ids are indexed directly, large ones deduplicated by sorting: same result."""
    items, scores, weights = _batch(6)
    fuser = make_fuser(name, k=K)
    dense = fuser.fuse(items, weights, scores)
    sparse = fuser.fuse(items * 1_000_003 + 10**9, weights, scores)
    assert np.array_equal(sparse.items, dense.items * 1_000_003 + 10**9)
    assert np.allclose(sparse.credit, dense.credit)
    assert np.array_equal(sparse.source, dense.source)
    with pytest.raises(ValueError, match="items"):
        repeated = items.copy() * 1_000_003
        repeated[0, 0, 1] = repeated[0, 0, 0]
        fuser.fuse(repeated, weights, scores)


@pytest.mark.parametrize("name", FUSERS)
def test_large_batches_are_fused_in_chunks_with_the_same_result(name: str) -> None:
    items, scores, weights = _batch(7, b=300)
    fuser = make_fuser(name, k=K)
    whole = fuser.fuse(items, weights, scores, seed=3)
    assert whole.items.shape == (300, K)
    rng = np.random.default_rng(3)
    chunked = [
        fuser.fuse(
            items[:, lo : lo + fuser.chunk],
            weights[lo : lo + fuser.chunk],
            scores[:, lo : lo + fuser.chunk],
            rng=rng,
        )
        for lo in range(0, 300, fuser.chunk)
    ]
    for field in ("items", "source", "source_prob", "propensity", "credit"):
        joined = np.concatenate([getattr(part, field) for part in chunked])
        assert np.array_equal(getattr(whole, field), joined)
