"""Benchmark: top-10 serving speed of the EASE and content (bert) arms, against naive versions.

Question: how many users per second get their top-10 list from each arm on MovieLens-100K
(943 users x 1,682 items, per-user temporal split), and how does that compare with the
straightforward implementation of the same scores measured in the same run?

* ``ease``: ``EASEArm.top_k`` (dense history block @ B, group-maximum top-k) against
  numpy ``X @ B`` with seen items masked and ``argpartition`` + sort;
* ``bert``: ``BertArm.top_k`` with the item-item similarity table (gathered rows) and
  with per-block embedding products (the path for catalogues above 8,192 items),
  against torch materialising every (user, history item, item) similarity at once and
  then reducing; the arm also removes duplicate titles, the naive version does not;
* ``mf`` and ``item-knn`` ``top_k`` for scale.

Methods are timed round-robin (best of ``--repeats``), so load from other processes
hits them alike; ``agreement`` is the share of list entries equal to the naive lists.
Without the data set a random one of the same shape is used (and the content arm is
skipped, since it needs item text).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from arms_common import print_table, time_interleaved, write_json

from arms.bert import BertArm
from arms.data import Interactions, ItemCatalog, load_dataset, temporal_split
from arms.ease import EASEArm
from arms.knn import ItemKNNArm
from arms.mf import MFArm

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "arms_scoring.json"
DATA = (ROOT.parent / ".." / "shared" / "data" / "ml-100k").resolve()


def load(path: Path) -> tuple[Interactions, ItemCatalog | None]:
    if (path / "u.data").is_file():
        data = load_dataset(path)
        return data.interactions, data.items
    rng = np.random.default_rng(0)
    users = rng.integers(0, 943, 100_000)
    items = np.minimum(rng.zipf(1.3, 100_000), 1682) - 1
    return Interactions(users, items, rng.integers(0, 10**6, 100_000)), None


def naive_ease(arm: EASEArm, users: np.ndarray, k: int) -> np.ndarray:
    assert arm.weights_ is not None and arm.popularity_ is not None
    rows = arm._user_rows(users).numpy()
    x = np.zeros((len(rows), arm.n_items), dtype=np.float32)
    ex = arm._excluded(torch.from_numpy(rows))
    x[ex.rows, ex.cols] = 1.0
    scores = x @ arm.weights_.numpy() + 1e-6 * arm.popularity_.numpy()
    scores[x > 0] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
    return np.asarray(arm.item_ids_)[np.take_along_axis(top, order, 1)]


def naive_bert(arm: BertArm, users: np.ndarray, k: int) -> np.ndarray:
    assert arm.history_ is not None and arm.item_vecs_ is not None
    rows = arm._user_rows(users)
    hist = arm.history_[rows.clamp(min=0)]
    vecs = arm.item_vecs_
    sims = vecs[hist.clamp(min=0)] @ vecs.T  # every (user, history item, item) similarity
    sims.masked_fill_((hist < 0).unsqueeze(2), float("-inf"))
    scores = sims.amax(1) if arm.top_m == 1 else sims.topk(arm.top_m, dim=1).values.mean(1)
    ex = arm._excluded(rows)
    scores[torch.from_numpy(ex.rows), torch.from_numpy(ex.cols)] = float("-inf")
    return np.asarray(arm.item_ids_)[scores.topk(k, dim=1).indices.numpy()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    interactions, items = load(args.data)
    train, test = temporal_split(interactions, 0.2)
    users = np.unique(test.users)
    k = args.k
    ease = EASEArm(regularization=100.0, device="cpu").fit(train, items)
    mf = MFArm(device="cpu").fit(train, items)
    knn = ItemKNNArm(device="cpu").fit(train, items)
    methods: dict[str, Any] = {
        "ease arms top_k": lambda: ease.top_k(users, k)[0].numpy(),
        "ease naive numpy X @ B": lambda: naive_ease(ease, users, k),
        "mf arms top_k": lambda: mf.top_k(users, k)[0].numpy(),
        "item-knn arms top_k": lambda: knn.top_k(users, k)[0].numpy(),
    }
    reference = {"ease": naive_ease(ease, users, k)}
    if items is not None:
        bert = BertArm(device="cpu").fit(train, items)
        products = BertArm(device="cpu").fit(train, items)
        products._similarity_table = lambda: None  # type: ignore[method-assign]
        methods["bert arms top_k (item-item table)"] = lambda: bert.top_k(users, k)[0].numpy()
        methods["bert arms top_k (embedding products)"] = lambda: products.top_k(users, k)[
            0
        ].numpy()
        methods["bert naive torch, all similarities"] = lambda: naive_bert(bert, users, k)
        reference["bert"] = naive_bert(bert, users, k)
    timings = time_interleaved(methods, args.repeats)
    rows = []
    for name, fn in methods.items():
        arm = name.split()[0]
        naive = next((t for n, t in timings.items() if n.startswith(arm) and "naive" in n), None)
        ids = fn()
        rows.append(
            {
                "arm": arm,
                "method": name,
                "best_s": timings[name]["best_s"],
                "median_s": timings[name]["median_s"],
                "users_per_s": len(users) / timings[name]["best_s"],
                "x_naive": naive["best_s"] / timings[name]["best_s"] if naive else None,
                "agreement": float(np.mean(ids == reference[arm])) if arm in reference else None,
            }
        )
    load_avg = os.getloadavg()
    title = (
        f"top-{k} for {len(users)} users x {ease.n_items} items; "
        f"{torch.get_num_threads()} threads; best of {args.repeats}, interleaved; "
        f"load average {load_avg[0]:.1f}"
    )
    columns = ["arm", "method", "best_s", "median_s", "users_per_s", "x_naive", "agreement"]
    print_table(title, rows, columns)
    write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows})


if __name__ == "__main__":
    main()
