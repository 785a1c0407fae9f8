"""The package's shape, checked over its source with ``ast`` (no import of the package needed).

* no import cycle among the package's modules, counting module-level imports (the ones that run when
  a module is imported; imports inside functions are lazy and may point anywhere below);
* ``idnbandit.agents`` imports nothing of ``sim``, ``envs``, ``bench``, ``cli`` (lazy imports included):
  other simulators use the agents with numpy and numba only;
* no module over :data:`MAX_LINES` lines, except the modules of :data:`OVER_LIMIT` (each with its reason;
  an entry fails the test once its module is back under the limit, so the list cannot rot).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "idnbandit"

MAX_LINES = 400

#: modules allowed over MAX_LINES for now, path relative to the repository -> one-line reason, e.g.
#: ``"idnbandit/sim/core.py": "to split (issue 18)"``; empty: every module is within the limit
OVER_LIMIT: dict[str, str] = {}

#: packages the agents must never import (any level, lazy imports included)
AGENTS_MUST_NOT_IMPORT = ("idnbandit.sim", "idnbandit.envs", "idnbandit.bench", "idnbandit.cli")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package: Path) -> dict[str, Path]:
    """Every module of ``package`` (a directory) by dotted name."""
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


class _Imports(ast.NodeVisitor):
    """(module, level, names, module_level, line) of every import; module level = runs on import."""

    def __init__(self) -> None:
        self.found: list[tuple[str, int | None, tuple[str, ...], bool, int]] = []
        self._depth = 0  # function nesting
        self._type_checking = 0  # inside ``if TYPE_CHECKING:`` (never runs)

    def _lazy(self) -> bool:
        return self._depth > 0 or self._type_checking > 0

    def visit_FunctionDef(self, node):  # noqa: N802 - ast API
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815
    visit_Lambda = visit_FunctionDef  # noqa: N815

    def visit_If(self, node):  # noqa: N802
        test = node.test
        is_tc = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        self.visit(node.test)
        self._type_checking += is_tc
        for n in node.body:
            self.visit(n)
        self._type_checking -= is_tc
        for n in node.orelse:
            self.visit(n)

    def visit_Import(self, node):  # noqa: N802
        for alias in node.names:
            self.found.append((alias.name, 0, (), not self._lazy(), node.lineno))

    def visit_ImportFrom(self, node):  # noqa: N802
        names = tuple(a.name for a in node.names)
        self.found.append((node.module or "", node.level, names, not self._lazy(), node.lineno))


def resolve(importer: str, is_package: bool, module: str, level: int, names: tuple[str, ...],
            known: set[str]) -> list[str]:
    """The package modules an import statement of ``importer`` loads (most specific known names)."""
    if level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        if level > 1:
            base = base[: len(base) - (level - 1)]
        target = ".".join(base + ([module] if module else []))
    else:
        target = module
    # ``from a import b`` where ``a.b`` is a module: that submodule (not the package ``a``)
    out = [f"{target}.{name}" for name in names if f"{target}.{name}" in known]
    if len(out) < len(names) or not names:  # a name of ``a`` itself, or ``import a``
        parts = target.split(".")
        for i in range(len(parts), 0, -1):  # ``import a.b.c`` where only ``a.b`` is ours: a.b
            if ".".join(parts[:i]) in known:
                out.append(".".join(parts[:i]))
                break
    return out


def import_graph(package: Path) -> dict[str, list[tuple[str, bool, int]]]:
    """Module -> [(imported package module, module_level, line)]."""
    modules = package_modules(package)
    known = set(modules)
    graph: dict[str, list[tuple[str, bool, int]]] = {}
    for name, path in modules.items():
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        edges = graph.setdefault(name, [])
        for module, level, names, top, line in visitor.found:
            for target in resolve(name, path.name == "__init__.py", module, level, names, known):
                if target != name:
                    edges.append((target, top, line))
    return graph


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph`` (module -> imported modules), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _edges(graph, module_level_only: bool) -> dict[str, list[str]]:
    return {m: sorted({t for t, top, _ in edges if top or not module_level_only}) for m, edges in graph.items()}


@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


def test_graph_sees_the_package(graph):
    # guards the walker itself: relative, lazy and ``from package import submodule`` imports resolved
    assert len(graph) > 50
    assert ("idnbandit.agents.registry", True) in {(t, top) for t, top, _ in graph["idnbandit.bench.specs"]}
    assert ("idnbandit.sim", False) in {(t, top) for t, top, _ in graph["idnbandit.fl.delivery"]}
    assert "idnbandit.errors" in _edges(graph, True)["idnbandit.fl.loop"]


def test_walker_on_a_small_package(tmp_path):
    pkg = tmp_path / "pk"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .sub import b\nimport os\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..a import x\n\ndef f():\n    from .. import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    g = import_graph(pkg)
    assert _edges(g, True) == {"pk": ["pk.a"], "pk.a": ["pk.sub.b"], "pk.sub": [], "pk.sub.b": ["pk.a"],
                               "pk.c": []}
    assert _edges(g, False)["pk.sub.b"] == ["pk.a", "pk.c"]
    assert _edges(g, False)["pk.c"] == ["pk.a"]
    assert find_cycle(_edges(g, True)) == ["pk.a", "pk.sub.b", "pk.a"]
    assert find_cycle({"a": ["b"], "b": []}) is None


def test_no_import_cycle_at_module_level(graph):
    cycle = find_cycle(_edges(graph, module_level_only=True))
    assert cycle is None, "import cycle (module-level imports): " + " -> ".join(cycle)


def test_agents_import_nothing_of_the_simulator_side(graph):
    bad = [f"{m} line {line} imports {t}" for m, edges in graph.items()
           if m == "idnbandit.agents" or m.startswith("idnbandit.agents.")
           for t, _, line in edges
           if any(t == p or t.startswith(p + ".") for p in AGENTS_MUST_NOT_IMPORT)]
    assert not bad, "agents must not import sim/envs/bench/cli:\n" + "\n".join(bad)


def _n_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_over_the_line_limit():
    over = {p.relative_to(ROOT).as_posix(): _n_lines(p) for p in PACKAGE.rglob("*.py") if _n_lines(p) > MAX_LINES}
    unlisted = {p: n for p, n in over.items() if p not in OVER_LIMIT}
    assert not unlisted, f"modules over {MAX_LINES} lines (split them): {unlisted}"
    stale = sorted(p for p in OVER_LIMIT if p not in over)
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): remove from OVER_LIMIT: {stale}"


def test_fl_imports_without_torch_or_the_simulator():
    code = ("import sys, idnbandit.fl\n"
            "bad = sorted(m for m in ('torch', 'idnbandit.sim', 'idnbandit.fl.loop') if m in sys.modules)\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bench_leaves_the_ens_names_to_the_registry():
    # bench/ does not import idnbandit.ensembles to register the ens-* names: the registry loads them
    # through the ``idnbandit.agents`` entry point on first lookup
    code = ("import sys, idnbandit.bench, idnbandit.cli\n"
            "assert 'idnbandit.ensembles' not in sys.modules\n"
            "from idnbandit.agents.registry import make_agent\n"
            "assert type(make_agent('ens-cucb', 3, 4, seed=0)).__name__ == 'CUCB'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
