"""The shape of the package: a light, lazy top level; documented imports that behave as
documented; no import cycles; data flowing one way (faces -> models -> explainers -> evaluate ->
classify -> words -> plot), with notebooks and the command line on top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xfr_lib"

# The order data flows in: a unit may import only from units before it (and from itself).
LAYERS = [
    {"errors", "_io", "_registry"},
    {"data"},
    {"faces"},
    {"models"},
    {"explainers"},
    {"evaluate"},
    {"classify"},
    {"words"},
    {"plot"},
    {"book", "runner", "widgets"},
    {"lab"},
    {"cli"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The xfr_lib modules a module imports, at module level or inside functions."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            # "from pkg import sub" imports the submodule sub when there is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "xfr_lib"


def test_no_import_cycles():
    graph = _graph()
    # A submodule imports its package's __init__ implicitly, so an edge back to it is a cycle.
    for name in graph:
        parent = name.rsplit(".", 1)[0]
        assert parent not in graph[name] or parent == "xfr_lib", \
            f"{name} imports its own package {parent} (import from the private module instead)"
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_data_flows_one_way():
    level = {unit: k for k, units in enumerate(LAYERS) for unit in units}
    graph = _graph()
    units = {_unit(m) for m in graph} - {"xfr_lib"}
    assert units <= set(level), f"place {sorted(units - set(level))} in LAYERS"
    wrong = [(m, t) for m, targets in graph.items() for t in targets
             if _unit(m) != "xfr_lib" and _unit(t) != "xfr_lib"
             and level[_unit(t)] > level[_unit(m)]]
    assert not wrong, f"imports against the flow (module -> imported): {wrong}"


def test_the_top_level_is_lazy_and_the_documented_imports_work():
    code = """
import sys
import xfr_lib
assert "torch" not in sys.modules, "import xfr_lib imported torch"
assert callable(xfr_lib.explain) and xfr_lib.explain.__module__ == "xfr_lib.explainers._api"
import xfr_lib.explainers as xe
assert xe.explain is xfr_lib.explain and "corrrise" in xe.list_methods()
from xfr_lib.explainers import CorrRISE, Explainer, Gallery
from xfr_lib.models import load_model, FaceModel
from xfr_lib.data import load_dataset, make_verification_protocol
from xfr_lib.evaluate import embed_dataset, eer
from xfr_lib.faces import align_face, chip_to_tensor
from xfr_lib.plot import plot_verification
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("package", ["data", "faces", "models", "explainers", "evaluate",
                                     "classify", "words", "plot"])
def test_subpackages_export_what_they_document(package):
    module = __import__(f"xfr_lib.{package}", fromlist=["__all__"])
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing
    assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))
    private = [n for n in module.__all__ if n.startswith("_")]
    assert not private


def test_notebooks_import_only_public_names():
    bad = []
    for md in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.md")):
        for line in md.read_text().splitlines():
            text = line.strip()
            if text.startswith(("from xfr_lib", "import xfr_lib")):
                module = text.split()[1]
                if any(part.startswith("_") for part in module.split(".")) or \
                        " import _" in text:
                    bad.append(f"{md.name}: {text}")
    assert not bad, bad
