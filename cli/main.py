"""The ``bandit-fusion`` command line: wires ``bandit``, ``arms``, ``simulations`` and ``service``.

Each command group lives in its own module and imports its heavy dependencies
(torch, SQLAlchemy, uvicorn) inside the command, so ``bandit-fusion --help`` stays fast.
"""

from __future__ import annotations

import typer

from cli import arms, demo, replay, service, simulate

app = typer.Typer(
    name="bandit-fusion",
    help="Multi-armed bandit fusion engine for recommender systems.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("simulate")(simulate.simulate)
app.command("policies")(simulate.policies)
app.command("demo")(demo.demo)
app.add_typer(arms.app, name="arms")
service.register(app)
replay.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
