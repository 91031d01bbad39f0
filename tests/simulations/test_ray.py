"""Simulation grids on Ray: the same runs, in the same order, as on local processes.

The Ray tests start one local Ray instance (1 CPU, no dashboard) for the module. They skip
where Ray is not installed, and fail instead when ``CI`` is set (CI installs the ``ray``
extra).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from simulations.envs import linear_means, make_env
from simulations.parallel import map_ordered
from simulations.runner import PolicySpec, run_grid

MEANS = linear_means(3, 0.1, 0.5)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Ray is not installed but CI is set: install the 'ray' extra")
        pytest.skip("Ray is not installed (pip install 'bandit-fusion[ray]')")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_grid_equals_the_local_grid(local_ray) -> None:
    envs = [
        make_env("bernoulli", MEANS, 400),
        make_env("delayed", MEANS, 400, delay=20, batch=10),
    ]
    specs = [PolicySpec("thompson"), PolicySpec("ucb1", label="ucb")]
    local = list(run_grid(envs, specs, [0, 1], jobs=1, progress=False))
    remote = list(run_grid(envs, specs, [0, 1], progress=False, backend="ray"))
    assert [(r.env, r.seed, r.policy) for r in remote] == [(r.env, r.seed, r.policy) for r in local]
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_array_equal(a.arms, b.arms)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.regret, b.regret)
        assert a.final_regret == b.final_regret
        assert a.params == b.params


@pytest.mark.slow
def test_simulate_cli_runs_on_ray(local_ray, tmp_path) -> None:
    runner = CliRunner()
    common = ["simulate", "--arms", "3", "--horizon", "300", "--seeds", "2", "--format", "csv"]
    common += ["--policies", "thompson,kl-ucb", "--no-plots", "--no-progress"]
    on_ray = runner.invoke(app, [*common, "--backend", "ray", "--out", str(tmp_path / "ray")])
    assert on_ray.exit_code == 0, on_ray.output
    local = runner.invoke(app, [*common, "--jobs", "1", "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    ray_summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    local_summary = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert ray_summary["config"]["backend"] == "ray"
    assert local_summary["config"]["backend"] == "local"
    regret = [(r["env"], r["policy"], r["regret_mean"]) for r in ray_summary["results"]]
    assert regret == [(r["env"], r["policy"], r["regret_mean"]) for r in local_summary["results"]]
    rows = [(tmp_path / d / "rows.csv").read_text() for d in ("ray", "local")]
    assert rows[0] == rows[1]


def test_ray_backend_without_ray_says_how_to_install_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'bandit-fusion\[ray\]'"):
        list(map_ordered(abs, [1, -2], backend="ray"))
    result = CliRunner().invoke(
        app, ["simulate", "--backend", "ray", "--horizon", "10", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--backend': Ray is not installed" in result.output


def test_unknown_backend_and_bad_jobs_are_refused() -> None:
    with pytest.raises(ValueError, match="backend must be one of local, ray"):
        map_ordered(abs, [1], backend="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        map_ordered(abs, [1], jobs=0)
    assert list(map_ordered(abs, [-3, 1, -2], jobs=2)) == [3, 1, 2]
