"""The import graph of the package points one way (DESIGN.md, "The flow, one room for each step").

Every module under ``clvmodels/`` is parsed with :mod:`ast` — nothing is imported, so a broken
module cannot hide an arrow — and every import counts: module level and inside functions (lazy
imports), ``import a.b``, ``from a import b``, relative imports, imports under
``if TYPE_CHECKING:``, and modules named by a string (``importlib.import_module("clvmodels.x")``
or a lazy-loading table whose value is exactly a module name). ``from clvmodels import x``
imports the package face, whatever ``x`` is.

The rules:

* no module but the face (``clvmodels/__init__.py``) imports the face;
* no cycles;
* no arrow from a lower layer to a higher one (:data:`LAYERS`; arrows within a layer are
  allowed as long as they make no cycle), and every module has a layer;
* siblings that must stay apart although their layers would allow the arrow
  (:data:`SEPARATE`), and matplotlib only where something is drawn (:data:`DRAWING`);
* no module is longer than :data:`MAX_LINES` unless :data:`LONG_MODULES` says why.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "clvmodels"
FACE = "clvmodels"

#: Layer of each module, by its name inside the package ("rfm" is ``clvmodels.rfm``). A key
#: also places the modules below it ("models" places ``clvmodels.models.bgnbd``); the longest
#: matching key wins. A module may import modules of its own layer or lower ones only.
#: Place a new module here deliberately: the test fails until it has a layer.
LAYERS: dict[str, int] = {
    # 0: foundations, importing nothing of the package (or only each other)
    "_version": 0,
    "_validation": 0,
    "_io": 0,
    "_summary_rules": 0,  # rules every RFM summary engine shares
    "_date_rules": 0,  # dates in text: one layout per column (summaries' engines read by it)
    "_contract_rules": 0,  # rules every contract summary engine shares
    "rows": 0,  # unique rows with weights: used by engines, fitters and valuation alike
    # 1: summaries (transactions -> one row per customer) and data
    "rfm": 1,
    "contract": 1,
    "engines": 1,
    "datakinds": 1,
    "covariates": 1,  # customer attributes -> design matrix (models and the CLI read it)
    "datasets": 1,
    "kpis": 1,
    "subscription_kpis": 1,
    # simulators make data in the summaries' contract from known parameters (they need no
    # model code); the model classes register theirs, so they sit below models/
    "simulate": 1,
    # 2: models (one layer for now; its internal order is refined in models/)
    "models": 2,
    # 3: what a fitted model is used for
    "valuation": 3,
    "diagnostics": 3,
    "diagnostics_discrete": 3,  # tables of the discrete-time models (sBG, BG/BB)
    "diagnostics_covariates": 3,  # per-profile tables and coefficient table (covariates)
    "diagnostics_value": 3,  # Lorenz and gains tables (model-free; diagnostics re-exports)
    "plotting": 3,
    "plotting_discrete": 3,  # draws the diagnostics_discrete tables
    "plotting_backtest": 3,  # draws a backtest's metrics table (re-exported by plotting)
    # 4: evaluation and the batch forecast
    "evaluation": 4,
    "workflow": 4,
    # 5: the report renders a comparison
    "report": 5,
    # declarative runs (RUN.toml → a run directory): evaluation, report and valuation steps
    "runs": 5,
    # 6: the command line
    "cli": 6,
    # last: the package face
    "": 7,
}

#: Arrows the layers would allow but the design does not: (source key, target key) -> why.
SEPARATE: dict[tuple[str, str], str] = {
    ("evaluation", "plotting"): "evaluation computes and plotting draws: the metrics take "
                                "their tables from diagnostics",
    ("evaluation", "plotting_discrete"): "evaluation computes and plotting draws",
    ("valuation", "plotting"): "valuation computes values; plotting draws them",
    ("valuation", "diagnostics"): "valuation knows nothing of how a model is checked",
}

#: The only modules that may import matplotlib (everything else computes, and stays
#: importable and fast without a plotting backend).
DRAWING = ("plotting", "plotting_discrete", "plotting_backtest", "report")

#: Lines a module may have before it has to say why it is longer.
MAX_LINES = 900

#: Modules allowed past :data:`MAX_LINES`: (ceiling, why). The ceiling keeps them from growing
#: unnoticed; a module that shrinks under MAX_LINES should leave this list.
LONG_MODULES: dict[str, tuple[int, str]] = {
    "models._special": (1500, "special functions only (2F1, U, the Pareto/NBD tail integral), "
                              "each with its series, exact gradients and guards for extreme "
                              "inputs; the next growth splits it one file per function"),
    "kpis": (1100, "one job: model-free KPIs from raw transactions; half of it is the typed "
                   "overloads (scalar / per customer) and the definitions users read"),
    "models.paretonbd": (1000, "one family's math (likelihood and its tail-integral cases, "
                               "P(alive), expectations, pmf, closed-form DERT) and its class"),
}


# --------------------------------------------------------------------------------------
# the graph
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` imports ``target`` (both dotted module names)."""

    source: str
    target: str
    line: int
    statement: str

    def __str__(self) -> str:
        where = f"{_path(self.source)}:{self.line}"
        return f"{where}: {self.statement}  ({self.source} -> {self.target})"


def _path(module: str) -> str:
    parts = module.split(".")
    if (ROOT.parent.joinpath(*parts) / "__init__.py").exists():
        return "/".join([*parts, "__init__.py"])
    return "/".join(parts) + ".py"


def discover(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module under ``root`` (packages by their __init__)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module of ``from <level dots><name> import ...`` inside ``module``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        package = package[: len(package) - (level - 1)]
    return ".".join([*package, name] if name else package)


def imports_of(module: str, source: str, known: Iterable[str], *,
               is_package: bool = False) -> list[Arrow]:
    """Every arrow from ``module`` (whose text is ``source``) into the package."""
    known = set(known)
    tree = ast.parse(source)
    arrows: list[Arrow] = []

    def add(target: str, node: ast.AST) -> None:
        if target == FACE or target.startswith(FACE + "."):
            arrows.append(Arrow(module, target, node.lineno, ast.unparse(node).split("\n")[0]))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            add(base, node)  # ``from P import x`` runs P (the face when P is clvmodels)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    add(f"{base}.{alias.name}", node)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith(FACE + ".") and node.value in known):
            add(node.value, node)  # importlib.import_module("clvmodels.x"), lazy tables
    return arrows


def build_graph(modules: Mapping[str, Path] | None = None) -> list[Arrow]:
    modules = discover() if modules is None else modules
    arrows = []
    for name, path in modules.items():
        arrows += imports_of(name, path.read_text(encoding="utf-8"), modules,
                             is_package=path.name == "__init__.py")
    return [a for a in arrows if a.source != a.target]


def layer_of(module: str) -> int | None:
    """Layer of a dotted module name from :data:`LAYERS` (None: not placed)."""
    if module == FACE:
        return LAYERS[""]
    inner = module.removeprefix(FACE + ".")
    best = None
    for key, layer in LAYERS.items():
        if key and (inner == key or inner.startswith(key + ".")):
            if best is None or len(key) > len(best[0]):
                best = (key, layer)
    return None if best is None else best[1]


def cycles(arrows: Iterable[Arrow]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as one cycle
    through some of its members followed by the rest, sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a in arrows:
        graph[a.source].add(a.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # recursion depth <= number of modules
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def a_cycle(component: list[str], arrows: Iterable[Arrow]) -> list[str]:
    """One concrete cycle inside a strongly connected component (shortest through its first
    member), as module names with the first repeated at the end."""
    members = set(component)
    graph: dict[str, list[str]] = defaultdict(list)
    for a in arrows:
        if a.source in members and a.target in members:
            graph[a.source].append(a.target)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(set(graph[v])):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    return component


# --------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    found = discover()
    assert FACE in found and "clvmodels.rfm" in found, f"no package found under {ROOT}"
    return found


@pytest.fixture(scope="module")
def arrows(modules: dict[str, Path]) -> list[Arrow]:
    return build_graph(modules)


def test_import_parser_sees_every_kind_of_import() -> None:
    known = {"clvmodels", "clvmodels.rfm", "clvmodels.models", "clvmodels.models.base",
             "clvmodels.models.bgnbd", "clvmodels.report", "clvmodels.plotting",
             "clvmodels.engines", "clvmodels.engines.duckdb"}
    source = '''
"""clvmodels.report is mentioned in a docstring: not an import."""
from __future__ import annotations
import os
from typing import TYPE_CHECKING
from . import base
from .bgnbd import BetaGeo
from ..rfm import compress_rfm
if TYPE_CHECKING:
    from clvmodels.plotting import Axes
LAZY = {"BetaGeo": "clvmodels.models.bgnbd", "label": "clvmodels"}

def later():
    import clvmodels.engines.duckdb
    from clvmodels import __version__
    return importlib.import_module("clvmodels.report")
'''
    found = {(a.target, a.line) for a in imports_of("clvmodels.models.persistence", source,
                                                     known)}
    assert found == {
        ("clvmodels.models", 6), ("clvmodels.models.base", 6),
        ("clvmodels.models.bgnbd", 7), ("clvmodels.rfm", 8), ("clvmodels.plotting", 10),
        ("clvmodels.models.bgnbd", 11), ("clvmodels.engines.duckdb", 14),
        ("clvmodels", 15), ("clvmodels.report", 16),
    }
    # in a package's __init__, one dot is the package itself
    init = imports_of("clvmodels.models", "from .base import x\nfrom . import bgnbd\n", known,
                      is_package=True)
    assert {a.target for a in init} == {"clvmodels.models.base", "clvmodels.models",
                                        "clvmodels.models.bgnbd"}
    # and the rules catch what they should on a small graph
    toy = [Arrow("clvmodels.rfm", "clvmodels.report", 1, "x"),
           Arrow("clvmodels.report", "clvmodels.plotting", 1, "x"),
           Arrow("clvmodels.plotting", "clvmodels.rfm", 1, "x"),
           Arrow("clvmodels.models.base", "clvmodels.rfm", 1, "x")]
    assert cycles(toy) == [["clvmodels.plotting", "clvmodels.report", "clvmodels.rfm"]]
    assert a_cycle(cycles(toy)[0], toy) == ["clvmodels.plotting", "clvmodels.rfm",
                                             "clvmodels.report", "clvmodels.plotting"]
    assert layer_of("clvmodels.models.anything") == LAYERS["models"]
    assert layer_of("clvmodels.engines.spark") == LAYERS["engines"]
    assert layer_of("clvmodels") == max(LAYERS.values())
    assert layer_of("clvmodels.not_placed_anywhere") is None


def test_every_import_of_the_package_names_a_module(modules: dict[str, Path],
                                                    arrows: list[Arrow]) -> None:
    dangling = [str(a) for a in arrows if a.target not in modules]
    assert not dangling, "imports of modules that do not exist:\n" + "\n".join(dangling)


def test_only_the_face_imports_the_face(arrows: list[Arrow]) -> None:
    bad = [str(a) for a in arrows if a.target == FACE and a.source != FACE]
    assert not bad, (
        "modules importing the package face (clvmodels/__init__.py); import the module that "
        "defines the name instead (e.g. clvmodels._version for __version__):\n" + "\n".join(bad)
    )


def test_every_module_has_a_layer(modules: dict[str, Path]) -> None:
    missing = sorted(m for m in modules if layer_of(m) is None)
    assert not missing, (
        f"modules without a layer: {missing}; add each to LAYERS in {Path(__file__).name} "
        "(below everything it imports, above everything that imports it)"
    )


def test_no_cycles(arrows: list[Arrow]) -> None:
    found = cycles(arrows)
    lines = []
    for component in found:
        lines.append(f"{len(component)} modules import each other: {', '.join(component)}")
        lines.append("  for example: " + " -> ".join(a_cycle(component, arrows)))
        inside = [a for a in arrows if a.source in component and a.target in component]
        lines += [f"    {a}" for a in sorted(inside, key=lambda a: (a.source, a.line))]
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_no_upward_arrows(arrows: list[Arrow]) -> None:
    upward = []
    for a in arrows:
        low, high = layer_of(a.source), layer_of(a.target)
        if a.target == FACE or low is None or high is None:
            continue  # the face and unplaced modules have tests of their own
        if high > low:
            upward.append(f"layer {low} -> {high}: {a}")
    assert not upward, ("imports of a higher layer (see LAYERS; move the shared code down, "
                        "or the module up):\n" + "\n".join(sorted(upward)))


def _matches(module: str, key: str) -> bool:
    inner = module.removeprefix(FACE + ".")
    return inner == key or inner.startswith(key + ".")


def test_separate_rooms_stay_apart(arrows: list[Arrow]) -> None:
    bad = [f"{a}: {why}" for a in arrows for (src, dst), why in SEPARATE.items()
           if _matches(a.source, src) and _matches(a.target, dst)]
    assert not bad, "imports the design keeps apart:\n" + "\n".join(bad)


def test_only_plotting_and_the_report_import_matplotlib(modules: dict[str, Path]) -> None:
    bad = []
    for name, path in modules.items():
        if any(_matches(name, key) for key in DRAWING):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(n == "matplotlib" or n.startswith("matplotlib.") for n in names):
                bad.append(f"{_path(name)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, (f"matplotlib imported outside {DRAWING} (compute the numbers in "
                     "diagnostics, draw them in plotting):\n" + "\n".join(bad))


def test_modules_stay_small(modules: dict[str, Path]) -> None:
    problems = []
    for name, path in modules.items():
        inner = name.removeprefix(FACE + ".") if name != FACE else ""
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        ceiling, _why = LONG_MODULES.get(inner, (MAX_LINES, ""))
        if n_lines > ceiling:
            where = "its ceiling in LONG_MODULES" if inner in LONG_MODULES else f"{MAX_LINES}"
            problems.append(f"{_path(name)}: {n_lines} lines > {where} ({ceiling})")
    assert not problems, ("modules too long: split them by job, or (one job that cannot be "
                          "split) list them in LONG_MODULES with the reason:\n"
                          + "\n".join(sorted(problems)))
    stale = [m for m in LONG_MODULES if f"{FACE}.{m}" not in modules]
    assert not stale, f"LONG_MODULES lists modules that do not exist: {stale}"
