"""The OBD loader: layout, malformed files, and the known answers on the real sample."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulations.obd import load_obd
from simulations.ope import DR, IPS, SNIPS, LinearRewardModel, evaluation_input
from simulations.ope.policies import zozotown_prior

REPO = Path(__file__).resolve().parents[2]
OBD = Path(os.environ.get("BANDIT_FUSION_DATA", REPO / ".." / "shared" / "data")) / "obd"


def write_campaign(root: Path, campaign: str = "men", n: int = 30, **changes: object) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "random" / campaign
    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2019-11-24", periods=n, freq="s").astype(str),
            "item_id": rng.integers(0, 4, n),
            "position": rng.integers(1, 3, n),
            "click": rng.integers(0, 2, n),
            "propensity_score": np.full(n, 0.25),
            "user_feature_0": rng.choice(["a", "b"], n),
            "user-item_affinity_0": rng.random(n),
        }
    )
    for column, value in changes.items():
        if value is None:
            frame = frame.drop(columns=[column])
        else:
            frame[column] = value
    frame.to_csv(folder / f"{campaign}.csv")
    items = pd.DataFrame(
        {
            "item_id": range(4),
            "item_feature_0": [0.1, 0.2, 0.3, 0.4],
            "item_feature_1": list("xyxy"),
        }
    )
    items.to_csv(folder / "item_context.csv")
    return folder


def test_any_campaign_folder_loads(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path, "women")
    log = load_obd(folder)
    assert log.n_rounds == 30 and log.n_actions == 4 and log.n_positions == 2
    assert log.context is not None and log.context.shape == (30, 2)  # one dummy + affinity
    assert log.action_context is not None and log.action_context.shape == (4, 2)
    assert log.name == "random/women"
    assert load_obd(folder / "women.csv", features=False).context is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"propensity_score": None}, "propensity_score"),
        ({"click": None}, "click"),
        ({"propensity_score": 0.0}, "propensity_score"),
        ({"click": ["x"] * 30}, "click"),
        ({"item_id": [0.5] * 30}, "item_id"),
        ({"position": 0}, "position"),
    ],
)
def test_malformed_files_name_the_column(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    folder = write_campaign(tmp_path, **changes)
    with pytest.raises(ValueError, match=message):
        load_obd(folder)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OBD folder"):
        load_obd(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def obd() -> Path:
    if not (OBD / "random" / "all" / "all.csv").is_file():
        pytest.skip(f"Open Bandit Dataset sample not found at {OBD}")
    return OBD


@pytest.mark.data
def test_bts_value_from_random_logs(obd: Path) -> None:
    """The ZOZOTOWN-prior BTS policy evaluated on the Random logs: IPS and SNIPS within
    Monte Carlo noise of Open Bandit Pipeline's published 0.00457 and 0.00479 (obp's
    distribution is a 100,000-draw Monte Carlo; ours is exact), and the BTS logs' own click
    rate inside the intervals."""
    random_log = load_obd(obd / "random" / "all")
    truth = load_obd(obd / "bts" / "all", features=False).rewards.mean()
    assert truth == pytest.approx(0.0042)
    dist = zozotown_prior("all", 3)
    q_hat = LinearRewardModel().fit_predict(random_log)
    data = evaluation_input(random_log, dist, q_hat)
    ips, snips, dr = (e.estimate(data) for e in (IPS(), SNIPS(), DR()))
    assert ips.value == pytest.approx(0.00457, abs=5e-5)
    assert snips.value == pytest.approx(0.00479, abs=5e-5)
    assert dr.value == pytest.approx(0.00483, abs=5e-4)
    for e in (ips, snips, dr):
        assert e.ci_low < truth < e.ci_high


@pytest.mark.data
def test_ips_with_the_bts_logs_own_propensities_is_its_mean(obd: Path) -> None:
    bts = load_obd(obd / "bts" / "all", features=False)
    pi = np.zeros((bts.n_rounds, bts.n_actions))
    pi[np.arange(bts.n_rounds), bts.actions] = bts.propensities
    # the rest of each row's mass on other actions does not enter IPS
    other = (bts.actions + 1) % bts.n_actions
    pi[np.arange(bts.n_rounds), other] += 1.0 - bts.propensities
    from simulations.ope import rows_input

    assert IPS().estimate(rows_input(bts, pi)).value == pytest.approx(bts.rewards.mean())
