"""Alembic environment: the URL comes from the service settings, never from alembic.ini."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from service.db import make_engine
from service.models import Base
from service.settings import Settings

config = context.config
if config.config_file_name is not None and not config.attributes.get("settings"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

settings: Settings = config.attributes.get("settings") or Settings()
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=settings.url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(settings)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
