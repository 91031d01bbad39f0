"""The ``bandit-fusion`` command line: wires ``bandit``, ``arms``, ``simulations`` and ``service``.

Each command group lives in its own module and imports its heavy dependencies
(torch, SQLAlchemy, uvicorn) inside the command, so ``bandit-fusion --help`` stays fast.
Errors that a command lets through end as one line and exit code 2 (what to fix) or 1
(unexpected), see :mod:`cli.errors`; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli import arms, demo, replay, service, simulate
from cli.errors import ErrorReportingGroup

app = typer.Typer(
    name="bandit-fusion",
    help="Multi-armed bandit fusion engine for recommender systems.",
    no_args_is_help=True,
    add_completion=False,
    cls=ErrorReportingGroup,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error (default: one line).")
    ] = False,
) -> None:
    """Multi-armed bandit fusion engine for recommender systems."""


app.command("simulate")(simulate.simulate)
app.command("policies")(simulate.policies)
app.command("demo")(demo.demo)
app.add_typer(arms.app, name="arms")
service.register(app)
replay.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
