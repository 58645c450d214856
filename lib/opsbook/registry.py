"""One way to extend each part of opsbook: a registry per kind of thing.

The thing is registered by a decorator beside its definition (Cloud Custodian's
`@resources.register`, papermill's engine registry); the registry's explicit list of
module names, given where the registry is created, is its loader (Custodian's
`resource_map.py`). So adding a CLI command, a sandbox service, a sweeper finder, a cost
source or a health check is one decorated definition, plus its module in that list when
the module is new.

    SERVICES = Registry("sandbox service", ["opsbook.sandbox.aws.moto_server", ...])

    @SERVICES.register("aws")
    class MotoService: ...

`items()` imports the listed modules once, in list order, and returns what they
registered in that order (definition order within a module). The list is made of names,
not imports, so a registry never forms an import cycle with the modules it loads.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from opsbook.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named things of one kind, loaded from an explicit list of modules."""

    def __init__(self, kind: str, modules: Sequence[str]) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self._entries: dict[str, tuple[str, T]] = {}  # name -> (defining module, thing)
        self._loaded = False

    def register(self, name: str, module: str | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated thing under `name` (a later one replaces it)."""

        def decorator(thing: T) -> T:
            self._entries.pop(name, None)
            self._entries[name] = (module or getattr(thing, "__module__", ""), thing)
            return thing

        return decorator

    def load(self) -> None:
        if self._loaded:
            return
        for module in self.modules:
            importlib.import_module(module)
        self._loaded = True

    def items(self) -> list[tuple[str, T]]:
        """(name, thing) in the order of the module list, then of definition."""
        self.load()
        order = {module: i for i, module in enumerate(self.modules)}
        ranked = sorted(enumerate(self._entries.items()),
                        key=lambda e: (order.get(e[1][1][0], len(order)), e[0]))
        return [(name, thing) for _, (name, (_, thing)) in ranked]

    def names(self) -> list[str]:
        return [name for name, _ in self.items()]

    def get(self, name: str) -> T:
        self.load()
        if name not in self._entries:
            raise UsageError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names()) or '(none)'}")
        return self._entries[name][1]

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries
