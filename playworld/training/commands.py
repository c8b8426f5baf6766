"""``playworld train ...``: one sub-app; each model family adds its command in `playworld.cli`
(``train_app.command("world-model")(...)``), so this module imports no model package."""

from __future__ import annotations

import typer

train_app = typer.Typer(help="Train models on play stores.", no_args_is_help=True)
