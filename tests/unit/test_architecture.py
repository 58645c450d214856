"""The package's shape: the sandbox stays a witness (no arrow into the product) and no import cycles.

Imports are read from the source with `ast` (module-level and function-level alike), so a
lazy import inside a function counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "lib"
PACKAGE = LIB / "opsbook"

# What the sandbox may import besides itself: params (what to build), errors, net, the
# registry mechanism, and the neutral modules that belong to neither side (formats, and the
# vendored public contracts).
NEUTRAL = ("opsbook.formats", "opsbook.contracts")
SANDBOX_MAY_IMPORT = ("opsbook.sandbox", "opsbook.params", "opsbook.errors", "opsbook.net", "opsbook.registry",
                      *NEUTRAL)
PRODUCT_AREAS = ("opsbook.drills", "opsbook.cost", "opsbook.datadog", "opsbook.inventory", "opsbook.provision",
                 "opsbook.dataplane", "opsbook.report", "opsbook.commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str], top_level_only: bool = False) -> set[str]:
    """The opsbook modules `path` imports (a `from pkg import mod` counts as importing pkg.mod)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(tree.body, top_level_only):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return {name for name in found if name in known}


def _import_nodes(body: list[ast.stmt], top_level_only: bool) -> list[ast.stmt]:
    """Import statements, skipping `if TYPE_CHECKING:` blocks (annotations only, never run)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.extend(_import_nodes(node.orelse, top_level_only))
        elif not top_level_only or isinstance(node, ast.If | ast.Try):
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, [])
                out.extend(_import_nodes([c for c in children if isinstance(c, ast.AST)], top_level_only))
    return out


def test_sandbox_imports_no_product_module():
    known = set(modules())
    bad = []
    for name, path in modules().items():
        if not name.startswith("opsbook.sandbox"):
            continue
        for target in sorted(imports_of(path, known)):
            if target == "opsbook" or not target.startswith(SANDBOX_MAY_IMPORT):
                bad.append(f"{name} -> {target}")
    assert not bad, "the sandbox imports product modules (a twin must not share logic with what it tests):\n" + \
        "\n".join(bad)


def test_neutral_modules_import_neither_side():
    known = set(modules())
    bad = [f"{name} -> {target}" for name, path in modules().items() if name.startswith(NEUTRAL)
           for target in imports_of(path, known)
           if target.startswith(("opsbook.sandbox", *PRODUCT_AREAS))]
    bad += [f"{name} -> {target}" for name, path in modules().items() if name in ("opsbook.registry", "opsbook.net")
            for target in imports_of(path, known) if target not in ("opsbook.errors",)]
    assert not bad, "\n".join(bad)


def test_contracts_import_nothing_of_opsbook_but_errors():
    known = set(modules())
    bad = [f"{name} -> {target}" for name, path in modules().items() if name.startswith("opsbook.contracts")
           for target in imports_of(path, known) if target != "opsbook.errors"]
    assert not bad, "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    return _Tarjan(graph).components()


class _Tarjan:
    def __init__(self, graph: dict[str, set[str]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.found: list[list[str]] = []

    def components(self) -> list[list[str]]:
        for node in sorted(self.graph):
            if node not in self.index:
                self.visit(node)
        return self.found

    def visit(self, node: str) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        for nxt in sorted(self.graph.get(node, ())):
            if nxt not in self.index:
                self.visit(nxt)
                self.low[node] = min(self.low[node], self.low[nxt])
            elif nxt in self.on_stack:
                self.low[node] = min(self.low[node], self.index[nxt])
        if self.low[node] == self.index[node]:
            self._pop_component(node)

    def _pop_component(self, root: str) -> None:
        component = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == root:
                break
        if len(component) > 1:
            self.found.append(sorted(component))


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level", "with-lazy-imports"])
def test_no_import_cycles(top_level_only: bool):
    mods = modules()
    known = set(mods)
    # a package's __init__ re-exporting its own modules is not a cycle of design
    graph = {name: {t for t in imports_of(path, known, top_level_only) if not name.startswith(t + ".")
                    and not (path.name == "__init__.py" and t.startswith(name + "."))}
             for name, path in mods.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles in lib/opsbook:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_walker_sees_a_cycle_and_a_boundary_breach():
    """The checks above can fail: a made-up graph with a cycle is found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
