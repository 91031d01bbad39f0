"""``bandit-fusion serve | keys | rebuild``: run and administer the allocation service."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the service's commands to the top-level ``app``."""
