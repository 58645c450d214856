"""opsbook: executable runbooks and cost notebooks for the SMSAPI platform."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opsbook import deferred_imports

deferred_imports.install()

if TYPE_CHECKING:
    from opsbook.clients import Env, open_env
    from opsbook.results import record

__all__ = ["Env", "open_env", "record"]
__version__ = "0.1.0"

# loaded on first use, so that commands which need no AWS client (`opsbook --help`) start quickly
_EXPORTS = {"Env": "opsbook.clients", "open_env": "opsbook.clients", "record": "opsbook.results"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'opsbook' has no attribute {name!r}")
