"""``bandit-fusion arms ...``: train and evaluate the base recommenders."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train and evaluate the recommender arms.", no_args_is_help=True)
