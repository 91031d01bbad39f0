"""Alembic: upgrade from an empty database on both backends, matches the models, downgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.db import downgrade, make_engine, upgrade
from service.models import Base

TABLES = {
    "experiments",
    "policy_states",
    "policy_updates",
    "decisions",
    "rewards",
    "arm_stats",
    "arm_series",
    "api_keys",
}


def test_upgrade_from_empty_matches_models_and_downgrades(settings):
    upgrade(settings)
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], f"models and migrations differ: {diff}"
        upgrade(settings)  # idempotent
        downgrade(settings, "base")
        with engine.connect() as conn:
            assert not TABLES & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_default_uses_wal(tmp_path, monkeypatch):
    from service.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BANDIT_FUSION_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.url == "sqlite:///bandit_fusion.db"
    upgrade(settings)
    engine = make_engine(settings)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    engine.dispose()
    assert (tmp_path / "bandit_fusion.db").exists()
