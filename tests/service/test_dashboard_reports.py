"""Reports pages: simulate / replay output folders under the dashboard, read-scoped, and no
request reaches a file outside the configured folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.test_dashboard import login

SUMMARY = {
    "config": {"seeds": [0, 1]},
    "results": [
        {"env": "bernoulli", "policy": "ucb1", "regret_mean": 46.05, "params": {"alpha": 2}},
        {"env": "bernoulli", "policy": "thompson", "regret_mean": 8.0, "params": {}},
    ],
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def make_reports(root: Path) -> Path:
    sim = root / "reports" / "sim1"
    sim.mkdir(parents=True)
    (sim / "summary.json").write_text(json.dumps(SUMMARY))
    (sim / "regret.html").write_text("<html><body><script>1</script>plot</body></html>")
    (sim / "regret.png").write_bytes(PNG)
    (sim / "rows.parquet").write_bytes(b"PAR1")
    (root / "reports" / "no-summary").mkdir()
    (root / "secret.json").write_text('{"secret": true}')
    (sim / "escape.json").symlink_to(root / "secret.json")
    (root / "reports" / "linked").symlink_to(sim)
    return root / "reports"


@pytest.fixture
def rapi(db: Any, keys: dict[str, str], tmp_path: Path) -> Any:
    settings = db.model_copy(update={"reports_dir": make_reports(tmp_path)})
    with TestClient(create_app(settings)) as client:
        yield client, keys


def test_reports_are_listed_and_shown(rapi):
    client, keys = rapi
    assert client.get("/dashboard/reports", follow_redirects=False).status_code == 303
    assert client.get("/dashboard/reports/sim1/files/regret.png").status_code == 401
    login(client, keys["read"])
    page = client.get("/dashboard/reports").text
    assert 'data-report="sim1"' in page
    assert 'data-report="no-summary"' not in page and 'data-report="linked"' not in page
    assert "rows.parquet" not in page and "escape.json" not in page
    report = client.get("/dashboard/reports/sim1").text
    assert 'data-key="results"' in report and "46.05" in report and "thompson" in report
    assert (
        'sandbox="allow-scripts"' in report
        and 'src="/dashboard/reports/sim1/files/regret.html"' in report
    )
    png = client.get("/dashboard/reports/sim1/files/regret.png")
    assert (
        png.status_code == 200 and png.content == PNG and png.headers["content-type"] == "image/png"
    )
    html = client.get("/dashboard/reports/sim1/files/regret.html")
    assert html.status_code == 200 and "plot" in html.text
    csp = html.headers["content-security-policy"]
    assert csp.startswith("sandbox allow-scripts") and "frame-ancestors 'self'" in csp
    assert "allow-same-origin" not in csp
    summary = client.get("/dashboard/reports/sim1/files/summary.json")
    assert summary.json() == SUMMARY


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/reports/no-summary",
        "/dashboard/reports/linked",
        "/dashboard/reports/..%2Fsecret.json",
        "/dashboard/reports/%2E%2E/files/secret.json",
        "/dashboard/reports/sim1/files/..%2F..%2Fsecret.json",
        "/dashboard/reports/sim1/files/escape.json",
        "/dashboard/reports/sim1/files/rows.parquet",
        "/dashboard/reports/sim1/files/.hidden.json",
        "/dashboard/reports/linked/files/summary.json",
        "/dashboard/reports/sim1/files/%2Fetc%2Fpasswd.json",
    ],
)
def test_no_path_leaves_the_reports_folder(rapi, url):
    client, keys = rapi
    login(client, keys["read"])
    r = client.get(url)
    assert r.status_code == 404, (url, r.status_code)
    assert "secret" not in r.text.replace("secret.json", "")


def test_without_a_reports_folder(api):
    login(api.client, api.keys["read"])
    page = api.client.get("/dashboard/reports").text
    assert "No reports folder is configured" in page
    assert api.client.get("/dashboard/reports/sim1").status_code == 404
    assert api.client.get("/dashboard/reports/sim1/files/summary.json").status_code == 404


def test_serve_passes_reports_to_the_workers(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from cli.main import app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("BANDIT_FUSION_SQLITE_PATH", str(tmp_path / "x.db"))
    monkeypatch.delenv("BANDIT_FUSION_REPORTS_DIR", raising=False)
    folder = make_reports(tmp_path)
    r = CliRunner().invoke(app, ["serve", "--reports", str(folder)])
    assert r.exit_code == 0, r.output
    import os

    from service.settings import Settings

    assert Settings().reports_dir == folder.resolve()
    assert os.environ["BANDIT_FUSION_REPORTS_DIR"] == str(folder.resolve())
    assert seen["factory"] is True
    r = CliRunner().invoke(app, ["serve", "--reports", str(tmp_path / "absent")])
    assert r.exit_code != 0
