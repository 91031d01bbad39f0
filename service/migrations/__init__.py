"""Alembic migrations of the service store (see service/alembic.ini)."""
