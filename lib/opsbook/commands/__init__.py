"""The `opsbook` command's parts: each registers itself beside its definition.

`@COMMANDS.register("run")` on a function makes `opsbook run`; registering a typer.Typer
makes a command group (`opsbook params check`). This list is the loader; `opsbook.cli`
builds the app from it in this order.
"""

from opsbook.registry import Registry

COMMANDS = Registry("command", [
    "opsbook.commands.params",
    "opsbook.commands.sandbox",
    "opsbook.commands.run",
    "opsbook.commands.estates",
    "opsbook.drills.commands",
    "opsbook.commands.runs",
])
