"""Datadog in the sandbox: an API emulator on loopback, reached through `DD_HOST`.

`DD_HOST` is the Datadog API URL variable of Datadog's Terraform provider and of
`lib/opsbook/datadog`'s client. The emulator accepts exactly the keys the AWS seed wrote
to SSM under the names params give (`datadog.api_key_ssm`, `datadog.app_key_ssm`), so
the library's production path (keys read from SSM) is the one exercised. A key params
do not name in SSM is made up here and exported as `DD_API_KEY` / `DD_APP_KEY`.
"""

from __future__ import annotations

from typing import Any

# the emulators started in this process; importing this package registers nothing
_RUNNING: list[Any] = []


def running() -> list[Any]:
    """The emulators started in this process (the contract tests observe them)."""
    return list(_RUNNING)
