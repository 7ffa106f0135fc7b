"""The package layering written in docs/architecture.md ("## Layers"), enforced on the source.

Every import of every module under src/dockyard is read with ``ast``: module level, inside
functions, and under ``if TYPE_CHECKING:`` (a type-only import is a dependency of the design too;
the docs say why). Each test lists every violation it finds, not only the first.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "dockyard"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 600
# the Go template engine: one grammar, one evaluator, kept whole on purpose
LONG_ALLOWED = {"cli/gotemplate.py"}
ROOT_NAME = "__init__"  # the package root, dockyard/__init__.py, as the layers block names it


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    target: str  # dotted module name (a submodule when one exists, else the package imported from)
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(SRC / PACKAGE)}:{self.line}"


@dataclass(frozen=True)
class Layers:
    level: dict[str, int]  # package → line of the stack, 0 the lowest
    only: dict[str, frozenset[str]]  # package outside the stack → the packages it may import


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found = []
    # ast.walk reaches imports in functions, classes and `if TYPE_CHECKING:` blocks alike
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, a.name, path, node.lineno) for a in node.names
                      if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module != PACKAGE and not module.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append(Import(name, sub if sub in known else module, path, node.lineno))
    return found


def all_imports() -> list[Import]:
    known = modules()
    return [imp for name, path in known.items() for imp in imports_of(name, path, known)]


def top(module: str) -> str:
    """The top-level package (or module) of ``dockyard.x.y``: ``x``; the root itself: ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_NAME


def read_layers() -> Layers:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = re.search(r"^## Layers\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"{ARCHITECTURE} has no '## Layers' section"
    block = re.search(r"^```layers\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "the '## Layers' section has no ```layers block"
    stack: list[list[str]] = []
    only: dict[str, frozenset[str]] = {}
    for raw in block.group(1).splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" in line:
            name, _, allowed = line.partition(":")
            only[name.strip()] = frozenset(allowed.split())
        else:
            stack.append(line.split())
    stack.reverse()  # written highest first
    level: dict[str, int] = {}
    for i, names in enumerate(stack):
        for name in names:
            assert name not in level and name not in only, f"{name} is placed twice in the layers block"
            level[name] = i
    return Layers(level, only)


def find_cycles(edges: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """For every strongly connected component of more than one module: one cycle through it (as a
    path a → … → a) and all its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0

    def visit(root: str) -> None:  # Tarjan's algorithm, iterative: the graph is a few hundred modules deep
        nonlocal counter
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [(_cycle_in(component, edges), component) for component in components]


def _cycle_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's smallest module (breadth-first back to it)."""
    start = min(component)
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges.get(node, set()) & component):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle in component {sorted(component)}")


def layer_violations(imports: list[Import], layers: Layers) -> list[str]:
    out: list[str] = []
    for imp in imports:
        src, dst = top(imp.importer), top(imp.target)
        if src == dst:
            continue
        if src in layers.only:
            if dst not in layers.only[src]:
                out.append(f"{imp.where()}: {imp.importer} imports {imp.target}: {src} may import only "
                           f"{' '.join(sorted(layers.only[src]))} and itself")
            continue
        if dst in layers.only:
            out.append(f"{imp.where()}: {imp.importer} imports {imp.target}: nothing may import {dst}")
            continue
        if src not in layers.level or dst not in layers.level:
            continue  # reported by test_every_package_is_placed
        if layers.level[dst] == layers.level[src]:
            out.append(f"{imp.where()}: {imp.importer} imports {imp.target}: {src} and {dst} share a layer")
        elif layers.level[dst] > layers.level[src]:
            out.append(f"{imp.where()}: {imp.importer} imports {imp.target}: {dst} is above {src}")
    return list(dict.fromkeys(out))  # `from x import a, b` is one import


def test_every_package_is_placed():
    layers = read_layers()
    placed = set(layers.level) | set(layers.only)
    missing = sorted({top(name) for name in modules()} - placed)
    if missing:
        pytest.fail(f"docs/architecture.md's layers block does not place: {', '.join(missing)}", pytrace=False)


def test_no_import_circle():
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target != imp.importer:
            edges.setdefault(imp.importer, set()).add(imp.target)
    cycles = find_cycles(edges)
    if cycles:
        pytest.fail(f"{len(cycles)} import circle(s):\n" + "\n".join(
            f"{' → '.join(cycle)}\n  (the circle's {len(members)} modules: {', '.join(sorted(members))})"
            for cycle, members in cycles), pytrace=False)


def test_imports_follow_the_layers():
    violations = layer_violations(all_imports(), read_layers())
    if violations:
        pytest.fail(f"{len(violations)} import(s) against docs/architecture.md's layers:\n" + "\n".join(violations),
                    pytrace=False)


def test_no_module_over_600_lines():
    too_long = []
    for path in modules().values():
        rel = str(path.relative_to(SRC / PACKAGE))
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_LINES and rel not in LONG_ALLOWED:
            too_long.append(f"{rel}: {count} lines")
    if too_long:
        pytest.fail(f"modules over {MAX_LINES} lines:\n" + "\n".join(sorted(too_long)), pytrace=False)


# The checker checked: each rule must be able to fail.

def test_cycles_are_found_and_shown_as_a_path():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert sorted(cycle for cycle, _ in find_cycles(edges)) == [["a", "b", "c", "a"], ["e", "e2", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}}) == []


def test_layer_rules_catch_upward_sideways_and_outside_imports():
    layers = Layers(level={"util": 0, "images": 1, "volumes": 1, "api": 2}, only={"cli": frozenset({"util"})})
    path = SRC / PACKAGE / "x.py"

    def check(importer: str, target: str) -> list[str]:
        return layer_violations([Import(importer, target, path, 1)], layers)

    assert check("dockyard.api.a", "dockyard.images.b") == []
    assert check("dockyard.images.a", "dockyard.images.b") == []
    assert check("dockyard.cli.a", "dockyard.util.b") == []
    assert "is above" in check("dockyard.images.a", "dockyard.api.b")[0]
    assert "share a layer" in check("dockyard.images.a", "dockyard.volumes.b")[0]
    assert "may import only" in check("dockyard.cli.a", "dockyard.images.b")[0]
    assert "nothing may import" in check("dockyard.api.a", "dockyard.cli.b")[0]


def test_relative_function_level_and_type_checking_imports_are_read(tmp_path):
    pkg = tmp_path / PACKAGE / "images"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "store.py").write_text("")
    code = ("from typing import TYPE_CHECKING\n"
            "from . import store\n"
            "from .. import errors\n"
            "if TYPE_CHECKING:\n    from ..engine.engine import Engine\n"
            "def f():\n    import dockyard.api.router\n")
    (pkg / "mod.py").write_text(code)
    known = {"dockyard.images.store": pkg / "store.py", "dockyard.errors": pkg / "e.py",
             "dockyard.engine.engine": pkg / "x.py", "dockyard.api.router": pkg / "y.py"}
    targets = {imp.target for imp in imports_of("dockyard.images.mod", pkg / "mod.py", known)}
    assert targets == {"dockyard.images.store", "dockyard.errors", "dockyard.engine.engine", "dockyard.api.router"}
