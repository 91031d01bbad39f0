"""Settings: environment variables with the BANDIT_FUSION_ prefix; unsafe values refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_environment_prefix(monkeypatch):
    monkeypatch.setenv("BANDIT_FUSION_DATABASE_URL", "postgresql+psycopg://u@h:5432/db")
    monkeypatch.setenv("BANDIT_FUSION_WORKERS", "4")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.url == "postgresql+psycopg://u@h:5432/db" and s.workers == 4 and not s.is_sqlite


def test_dotenv(tmp_path, monkeypatch):
    monkeypatch.delenv("BANDIT_FUSION_PORT", raising=False)
    (tmp_path / ".env").write_text("BANDIT_FUSION_PORT=9123\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().port == 9123


def test_unsafe_settings_refused(monkeypatch):
    monkeypatch.delenv("BANDIT_FUSION_DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="BANDIT_FUSION_DATABASE_URL is unset"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="changethis"):
        Settings(_env_file=None, database_url="postgresql+psycopg://u:changethis@h/db")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, database_schema="x; drop table")  # type: ignore[call-arg]
    ok = Settings(_env_file=None, environment="production", database_url="sqlite:///x.db")  # type: ignore[call-arg]
    assert ok.is_sqlite


def test_create_app_builds_nothing_at_import():
    import importlib

    mod = importlib.import_module("service.app")
    assert not hasattr(mod, "app")
