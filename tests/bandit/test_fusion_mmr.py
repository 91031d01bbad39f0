"""MMR diversity inside every fuser: the lists follow the MMR rule, diversity rises with the
weight, weight 0 is the plain fuser, and the draft fusers' propensities stay right."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bandit import FUSERS, make_fuser
from tests.bandit.fusion_reference import exact_draft_marginals, mmr_pick, mmr_reference

A, B, C, K = 3, 40, 30, 8
CATALOGUE = 60


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    items = np.stack(
        [[rng.choice(CATALOGUE, C, replace=False) for _ in range(B)] for _ in range(A)]
    )
    scores = -np.sort(-rng.normal(size=(A, B, C)), axis=2)
    weights = rng.dirichlet(np.ones(A), size=B)
    # genre-like flags: 6 genres, one to three per item; item 0 has none (orthogonal to all)
    features = np.zeros((CATALOGUE, 6))
    for i in range(1, CATALOGUE):
        features[i, rng.choice(6, size=rng.integers(1, 4), replace=False)] = 1.0
    return items, scores, weights, features


def _diversity(lists: np.ndarray, features: np.ndarray) -> float:
    """Mean pairwise cosine distance within a list, averaged over lists."""
    f = features[lists]
    norm = np.linalg.norm(f, axis=2, keepdims=True)
    f = f / np.where(norm > 0, norm, 1.0)
    sim = np.einsum("bif,bjf->bij", f, f)
    k = lists.shape[1]
    return float(1.0 - ((sim.sum(axis=(1, 2)) - np.einsum("bii->b", sim)) / (k * (k - 1))).mean())


@pytest.mark.parametrize("name", FUSERS)
def test_weight_zero_is_the_plain_fuser_and_a_positive_weight_diversifies(name: str) -> None:
    items, scores, weights, features = _batch(1)
    plain = make_fuser(name, k=K).fuse(items, weights, scores, seed=3)
    zero = make_fuser(name, k=K, mmr_weight=0.0).fuse(
        items, weights, scores, seed=3, features=features
    )
    assert np.array_equal(plain.items, zero.items)
    assert np.array_equal(plain.source, zero.source)
    diverse = make_fuser(name, k=K, mmr_weight=0.5).fuse(
        items, weights, scores, seed=3, features=features
    )
    assert _diversity(diverse.items, features) > _diversity(plain.items, features) + 0.1
    for b in range(B):
        assert len(set(diverse.items[b].tolist())) == K
        for j in range(K):
            assert diverse.items[b, j] in items[:, b]
    assert np.allclose(diverse.credit.sum(axis=2), 1.0)


@pytest.mark.parametrize("name", ["slot-mix", "team-draft"])
def test_draft_source_places_its_item_of_best_marginal_relevance(name: str) -> None:
    items, scores, weights, features = _batch(2)
    table = {i: features[i] for i in range(CATALOGUE)}
    out = make_fuser(name, k=K, mmr_weight=0.3).fuse(
        items, weights, scores, seed=5, features=features
    )
    for b in range(B):
        placed: list[int] = []
        for j in range(K):
            arm_list = items[out.source[b, j], b].tolist()
            assert out.items[b, j] == mmr_pick(arm_list, placed, table, 0.3), (b, j)
            placed.append(int(out.items[b, j]))


@pytest.mark.parametrize("name", ["weighted-score", "weighted-rrf"])
def test_scored_fusers_follow_greedy_mmr_on_the_normalised_fused_score(name: str) -> None:
    items, scores, weights, features = _batch(3)
    table = {i: features[i] for i in range(CATALOGUE)}
    out = make_fuser(name, k=K, mmr_weight=0.4).fuse(
        items, weights, scores, seed=0, features=features
    )
    for b in range(B):
        fused: dict[int, float] = {}
        for a in range(A):
            s = scores[a, b]
            norm = (s - s.min()) / (s.max() - s.min())
            for r, x in enumerate(items[a, b].tolist()):
                value = norm[r] if name == "weighted-score" else 1.0 / (60.0 + r + 1)
                fused[x] = fused.get(x, 0.0) + weights[b, a] * value
        top = max(fused.values())
        relevance = {x: v / top for x, v in fused.items()}
        assert out.items[b].tolist() == mmr_reference(relevance, K, table, 0.4), b
    assert np.all(out.propensity == 1.0)


def test_features_as_a_mapping_give_the_same_lists() -> None:
    items, scores, weights, features = _batch(4)
    mapping = {i: features[i].tolist() for i in range(CATALOGUE)}
    for name in FUSERS:
        fuser = make_fuser(name, k=K, mmr_weight=0.6)
        first = fuser.fuse(items, weights, scores, seed=1, features=features)
        second = fuser.fuse(items, weights, scores, seed=1, features=mapping)
        assert np.array_equal(first.items, second.items), name


# one request repeated: overlapping lists, items 1-12 with genre-like flags
LISTS = [[1, 2, 3, 4, 5, 6], [2, 1, 7, 3, 8, 9], [10, 2, 3, 1, 11, 12]]
WEIGHTS = [0.5, 0.3, 0.2]
FEATS = {
    1: [1, 0, 0],
    2: [1, 1, 0],
    3: [1, 0, 0],
    4: [0, 1, 0],
    5: [0, 0, 1],
    6: [1, 0, 1],
    7: [0, 1, 1],
    8: [1, 0, 0],
    9: [0, 0, 1],
    10: [1, 1, 0],
    11: [0, 1, 0],
    12: [0, 0, 0],
}
KP, BP, THETA = 4, 40_000, 0.4


@pytest.mark.slow
@pytest.mark.parametrize(("name", "rounds"), [("slot-mix", False), ("team-draft", True)])
def test_mmr_propensities_match_exact_marginals_and_frequencies(name: str, rounds: bool) -> None:
    table = np.zeros((13, 3))
    for item, f in FEATS.items():
        table[item] = f
    items = np.repeat(np.array(LISTS)[:, None, :], BP, axis=1)
    fuser = make_fuser(name, k=KP, n_samples=32, mmr_weight=THETA)
    out = fuser.fuse(items, WEIGHTS, seed=21, features=table)
    feats = {x: np.asarray(f, dtype=float) for x, f in FEATS.items()}
    exact, sources = exact_draft_marginals(
        LISTS, WEIGHTS, KP, rounds=rounds, features=feats, mmr_weight=THETA
    )
    plain, _ = exact_draft_marginals(LISTS, WEIGHTS, KP, rounds=rounds)
    assert exact != plain  # MMR changes the list distribution here
    for j in range(KP):
        support = sorted(x for (x, jj) in exact if jj == j)
        observed = np.array([(out.items[:, j] == x).sum() for x in support])
        assert observed.sum() == BP  # nothing outside the exact support is ever shown
        expected = np.array([exact[(x, j)] for x in support]) * BP
        if len(support) > 1:
            assert stats.chisquare(observed, expected).pvalue > 1e-3, (j, observed, expected)
        estimates = [out.propensity[out.items[:, j] == x, j].mean() for x in support]
        assert np.allclose(estimates, expected / BP, atol=0.01), (j, estimates)
        for a in range(A):
            rows = out.source[:, j] == a
            assert abs(out.source_prob[rows, j].mean() - sources.get((a, j), 0.0)) < 0.01
    assert np.allclose(out.propensity[:, 0], [exact[(int(x), 0)] for x in out.items[:, 0]])


def test_mmr_bad_input_raises_value_error_naming_the_argument() -> None:
    items, _, weights, features = _batch(0)
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="mmr_weight"):
            make_fuser("slot-mix", k=K, mmr_weight=bad)
    with pytest.raises(ValueError, match="max_per_category and mmr_weight"):
        make_fuser("weighted-rrf", k=K, max_per_category=2, mmr_weight=0.5)
    fuser = make_fuser("slot-mix", k=K, mmr_weight=0.5)
    with pytest.raises(ValueError, match="features"):
        fuser.fuse(items, weights, seed=0)
    with pytest.raises(ValueError, match="features"):
        fuser.fuse(items, weights, seed=0, features=features[:10])  # no row for most items
    with pytest.raises(ValueError, match="features"):
        fuser.fuse(items, weights, seed=0, features=features[:, 0])  # one dimension
    with pytest.raises(ValueError, match="features"):
        fuser.fuse(items, weights, seed=0, features={0: [1.0]})
    nan = features.copy()
    nan[items[0, 0, 0], 0] = np.nan
    with pytest.raises(ValueError, match="features"):
        fuser.fuse(items, weights, seed=0, features=nan)
    ragged = {i: [1.0] * (1 + i % 2) for i in range(CATALOGUE)}
    with pytest.raises(ValueError, match="features"):
        fuser.fuse(items, weights, seed=0, features=ragged)
    assert make_fuser("team-draft", k=K, mmr_weight=0.25).params["mmr_weight"] == 0.25
