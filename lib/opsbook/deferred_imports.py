"""Third-party imports whose cost is paid at import time but only needed later, deferred.

jsonschema (imported by nbformat in every run, and by the sandbox's schema checks) imports
`rfc3987_syntax`, when installed, for its draft-7 "iri" format checker; that module builds a
Lark grammar when imported (about a second of CPU), although only an "iri" check ever calls
it. `install()` puts a stand-in module in its place whose `is_valid_syntax` imports the real
module on first call, so "iri" checks behave exactly as before and everyone else skips the
cost. Imports nothing of opsbook (every process imports this first, through `opsbook`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

RFC3987_SYNTAX = "rfc3987_syntax"
_LOCK = threading.Lock()


def _real_rfc3987_syntax() -> types.ModuleType:
    with _LOCK:
        module = sys.modules.get(RFC3987_SYNTAX)
        if module is None or getattr(module, "__opsbook_stand_in__", False):
            sys.modules.pop(RFC3987_SYNTAX, None)
            module = importlib.import_module(RFC3987_SYNTAX)
        return module


def _is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
    return _real_rfc3987_syntax().is_valid_syntax(*args, **kwargs)


def _other_name(name: str) -> Any:
    """Any other public name of the module: the real module's (dunders are the import system's)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_real_rfc3987_syntax(), name)


def install() -> None:
    """The stand-in for rfc3987_syntax, unless it is imported already or not installed."""
    if RFC3987_SYNTAX in sys.modules or importlib.util.find_spec(RFC3987_SYNTAX) is None:
        return
    stand_in = types.ModuleType(RFC3987_SYNTAX, "Imports rfc3987_syntax on first use (opsbook.deferred_imports).")
    stand_in.__opsbook_stand_in__ = True  # type: ignore[attr-defined]
    stand_in.is_valid_syntax = _is_valid_syntax  # type: ignore[attr-defined]
    stand_in.__getattr__ = _other_name  # type: ignore[attr-defined]
    sys.modules[RFC3987_SYNTAX] = stand_in
