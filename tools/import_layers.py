"""The import layers of the apps, measured from the source: `python tools/import_layers.py [ROOT]`.

Every non-test module is read with `ast` (imports inside functions count too) and put in a
unit: an app's pure core (`quanta.core`, ...), an app's shell (`quanta`, ...), the node
runtime (`quanta/node/`, the composition root), or the wiring (`constellation_site/`, every
app's `routing.py`, which put the apps' consumers together, and the management commands:
entry points of their own). The layers, lowest first:

    exchange < quanta < payments, chronicler, herald < node < wiring

(`constellation_client` stands beside them: it may import the cores only). Prints the
imports that run upward, the cycles between units and the rules broken; tests/test_layers.py
asserts there are none.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

APPS = ("exchange", "quanta", "payments", "herald", "chronicler")
RANKS = {
    "exchange": 0,
    "quanta": 1,
    "payments": 2,
    "chronicler": 2,
    "herald": 2,
    "node": 3,
    "wiring": 4,
}
PACKAGES = (*APPS, "constellation_site", "constellation_client")
EXEMPT_PARTS = ("tests", "migrations")
EXEMPT_TOPS = ("tests", "bench", "tools", "static", "templates", "docs", ".venv", "var")


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement of one of our modules, from unit `source` to unit `target`."""

    path: str
    line: int
    source: str
    target: str
    module: str


def unit_of_path(relative: Path) -> str | None:
    """Returns the unit of a module (None: exempt, such as tests and tools)."""
    parts = relative.parts
    if parts[0] in EXEMPT_TOPS or any(p in EXEMPT_PARTS for p in parts[:-1]):
        return None
    if parts[0] == "constellation_site" or relative.name == "routing.py":
        return "wiring"
    if parts[1:3] == ("management", "commands"):
        return "wiring"  # An entry point (like a process's ASGI application): it composes.
    if parts[0] == "constellation_client":
        return "constellation_client"
    if parts[0] not in APPS:
        return None
    if parts[:2] == ("quanta", "node"):
        return "node"
    return f"{parts[0]}.core" if len(parts) > 2 and parts[1] == "core" else parts[0]


def unit_of_module(module: str) -> str | None:
    """Returns the unit an imported dotted name belongs to (None: not one of ours)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    path = Path(*parts).with_suffix(".py")
    if parts[-1] == "routing":
        return "wiring"
    return unit_of_path(path if len(parts) > 1 else Path(parts[0], "__init__.py"))


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from quanta import events` names a module; `from quanta.x import y` may too.
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def imports(root: Path) -> list[Import]:
    """Returns every import between two different units under `root`."""
    found: dict[tuple[str, int, str], Import] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        source = unit_of_path(relative)
        if source is None:
            continue
        for line, module in _imported(ast.parse(path.read_text(), filename=str(path))):
            target = unit_of_module(module)
            if target is None or target == source:
                continue
            top = ".".join(module.split(".")[:3])
            key = (str(relative), line, target)
            found.setdefault(key, Import(str(relative), line, source, target, top))
    return list(found.values())


def rank(unit: str) -> int:
    """Returns a unit's layer (a core shares its app's)."""
    return RANKS.get(unit.removesuffix(".core"), -1)


def upward(found: list[Import]) -> list[Import]:
    """Returns the imports from a lower layer to a higher one."""
    return [i for i in found if rank(i.source) >= 0 and rank(i.target) > rank(i.source)]


def broken_rules(found: list[Import]) -> list[tuple[Import, str]]:
    """Returns each import that breaks a rule of the layering, with the rule."""
    broken = []
    for i in found:
        if i.source.endswith(".core") and not i.target.endswith(".core"):
            broken.append((i, "a core imports only cores"))
        if i.source == "exchange.core" and i.target.startswith("quanta"):
            broken.append((i, "exchange/core imports nothing of quanta"))
        top = package_of(i.target)
        own = package_of(i.source) == top
        if top in ("payments", "chronicler") and not own and i.source not in ("node", "wiring"):
            broken.append((i, "only quanta/node imports payments or chronicler"))
        if i.target == "wiring" and i.source != "wiring":
            broken.append((i, "no app imports constellation_site (or a routing module)"))
        if i.source == "constellation_client" and not i.target.endswith(".core"):
            broken.append((i, "the client library imports only cores"))
    return broken


def package_of(unit: str) -> str:
    """Returns the unit's package for the cycle count (cores count with their app)."""
    return unit.removesuffix(".core")


def cycles(found: list[Import]) -> list[list[str]]:
    """Returns the strongly connected sets of packages with more than one member."""
    graph: dict[str, set[str]] = {}
    for i in found:
        source, target = package_of(i.source), package_of(i.target)
        if source != target:
            graph.setdefault(source, set()).add(target)
            graph.setdefault(target, set())
    reach = {node: _reachable(graph, node) for node in graph}
    groups: list[list[str]] = []
    for node in sorted(graph):
        group = sorted(n for n in graph if n in reach[node] and node in reach[n])
        if len(group) > 1 and group not in groups:
            groups.append(group)
    return groups


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def main(root: Path) -> int:
    """Prints the upward imports, the cycles and the broken rules; returns how many rules
    are broken."""
    found = imports(root)
    up = upward(found)
    pairs = sorted({(package_of(i.source), package_of(i.target)) for i in up})
    print(f"upward imports: {len(up)} statements, {len(pairs)} package pairs")
    for i in sorted(up, key=lambda i: (i.path, i.line)):
        print(f"  {i.path}:{i.line}  {i.source} -> {i.target} ({i.module})")
    found_cycles = cycles(found)
    print(f"cycles between packages: {len(found_cycles)}")
    for group in found_cycles:
        print("  " + " <-> ".join(group))
    broken = broken_rules(found)
    print(f"broken rules: {len(broken)}")
    for i, rule in broken:
        print(f"  {i.path}:{i.line}  {i.module}: {rule}")
    return len(broken)


if __name__ == "__main__":
    sys.exit(1 if main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()) else 0)
