"""The `opsbook` command (typer + rich).

Commands of other concerns live beside their code and register themselves here through
COMMAND_MODULES: each module has `register(app: typer.Typer) -> None`.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Executable runbooks and cost notebooks for the SMSAPI platform.", no_args_is_help=True)

COMMAND_MODULES = [
    "opsbook.commands.params",
    "opsbook.commands.sandbox",
    "opsbook.commands.run",
    "opsbook.drills.commands",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
