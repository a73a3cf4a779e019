"""The package's import structure (docs/architecture.md §12): every module imports on its own,
no import cycles between modules (in-function imports included), and the layering rules hold."""

from __future__ import annotations

import ast
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline_cocosnet"
PACKAGE_DIR = ROOT / PACKAGE

#: which parts of the package each part must not import (prefixes of dotted module names,
#: relative to the package); docs/architecture.md §12 explains the layers
FORBIDDEN = {
    "models": ["*"],  # the networks import nothing else of the package
    "processing": ["models", "tasks", "pipeline", "pipeline_output", "model_card", "convert", "release", "cli", "app", "training", ""],
    # the task registry: data about each task over the encoders (loaded lazily); nothing above it
    "tasks": ["models", "pipeline", "pipeline_output", "model_card", "convert", "release", "hub", "weights", "cli", "app", "training", "evaluation", ""],
    "processing.errors": ["processing.formats", "processing.backends", "processing.encoders", "processing.images"],
    "processing.images": ["processing.formats", "processing.backends", "processing.encoders"],
    "processing.image_processor": ["processing.formats", "processing.backends", "processing.encoders"],
    "processing.formats": ["processing.backends", "processing.encoders"],
    "processing.backends": ["processing.encoders"],
    "pipeline": ["app", "training", "cli"],
    "pipeline_output": ["app", "training", "cli"],
    "model_card": ["app", "training", "cli"],
    "convert": ["app", "training", "cli"],
    "release": ["app", "training", "cli"],
    "training": ["app", "cli", "evaluation"],
    "evaluation": ["app", "cli"],  # it reads VGG19 through training.vgg
    "app": ["training", "evaluation"],
    "": ["reference"],  # the reference implementations are for tests and benchmarks only
    "reference": ["processing", "pipeline", "app", "training"],
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module name of ``from <module> import …`` inside ``importer``."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (annotations only; never run)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def imports_of(name: str) -> set[str]:
    """The package's own modules that ``name`` imports anywhere in its code (functions included)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = resolve(name, node)
            # `from package import submodule` imports the submodule; `from module import name` the module
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of an attribute path: its module
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components (cycles are the ones with 2+ members)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_sees_relative_and_in_function_imports():
    # guards the parser itself, so that an empty graph cannot pass the checks below
    assert f"{PACKAGE}.models.layers" in GRAPH[f"{PACKAGE}.models.correspondence"]  # from .layers import …
    assert f"{PACKAGE}.training.trainer" in GRAPH[f"{PACKAGE}.training"]  # inside __getattr__
    assert f"{PACKAGE}.training.cli" in GRAPH[f"{PACKAGE}.cli"]  # inside a function
    assert f"{PACKAGE}.processing.encoders.edges" in GRAPH[f"{PACKAGE}.processing.encoders"]  # from .edges import …


def test_type_checking_imports_are_not_runtime_imports():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n")
    names = {alias.name for node in runtime_nodes(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert names == {"b"}


def test_cycle_detection_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [c for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]


def test_no_import_cycles_between_modules():
    cycles = [component for component in strongly_connected(GRAPH) if len(component) > 1]
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def relative(name: str) -> str:
    """``name`` without the package prefix ("" for the package itself)."""
    return name[len(PACKAGE) + 1 :] if name != PACKAGE else ""


def under(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


def breaks(importer: str, target: str) -> bool:
    """Whether ``importer`` importing ``target`` breaks a FORBIDDEN rule of any part ``importer`` is in."""
    source, target = relative(importer), relative(target)
    for part, forbidden in FORBIDDEN.items():
        if part and not under(source, part):  # the part "" is every module
            continue
        for prefix in forbidden:
            if prefix and under(source, prefix):  # a part may import itself
                continue
            if prefix == "*" and not under(target, part):  # nothing outside its own part
                return True
            if prefix == "" and target == "":  # the top-level package (it imports the pipeline and more)
                return True
            if prefix not in ("*", "") and under(target, prefix):
                return True
    return False


def test_layering_rules():
    broken = sorted(f"{a} imports {b}" for a, targets in GRAPH.items() for b in targets if breaks(a, b))
    assert not broken, "layering rules broken (docs/architecture.md §12):\n" + "\n".join(broken)


def test_layering_rule_checker_flags_violations():
    assert breaks(f"{PACKAGE}.models.layers", f"{PACKAGE}.processing.images")
    assert breaks(f"{PACKAGE}.processing.formats.ade20k", f"{PACKAGE}.processing.encoders.mask")
    assert breaks(f"{PACKAGE}.processing.backends.face", f"{PACKAGE}.processing.encoders.base")
    assert breaks(f"{PACKAGE}.processing.encoders.pose", f"{PACKAGE}.models.inputs")
    assert breaks(f"{PACKAGE}.processing.encoders.pose", PACKAGE)
    assert breaks(f"{PACKAGE}.training.trainer", f"{PACKAGE}.app.ui")
    assert not breaks(f"{PACKAGE}.processing.encoders.pose", f"{PACKAGE}.processing.backends.pose_estimation")
    assert not breaks(f"{PACKAGE}.models.patchmatch", f"{PACKAGE}.models.matching")
    assert breaks(f"{PACKAGE}.pipeline", f"{PACKAGE}.reference.naive")
    assert breaks(f"{PACKAGE}.models.patchmatch", f"{PACKAGE}.reference.naive")
    assert not breaks(f"{PACKAGE}.reference", f"{PACKAGE}.reference.naive")
    assert not breaks(f"{PACKAGE}.reference.naive", f"{PACKAGE}.models.patchmatch")
    assert breaks(f"{PACKAGE}.processing.encoders.pose", f"{PACKAGE}.tasks")
    assert breaks(f"{PACKAGE}.tasks.pose_to_body", f"{PACKAGE}.release")
    assert breaks(f"{PACKAGE}.tasks.base", f"{PACKAGE}.app.ui")
    assert not breaks(f"{PACKAGE}.tasks.pose_to_body", f"{PACKAGE}.processing.encoders.pose")
    assert not breaks(f"{PACKAGE}.pipeline", f"{PACKAGE}.tasks")


def test_comments_cite_sections_of_the_architecture_document_that_exist():
    sections = set(re.findall(r"^#+ §([\d.]+) ", (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"), re.M))
    assert {"1", "5", "7.1", "12"} <= sections
    cited, stale = [], []
    for folder in ("pipeline_cocosnet", "benchmarks", "tests", "experiments"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for number in re.findall(r"docs/architecture\.md §([\d.]*\d)", text):
                cited.append(number)
                if number not in sections:
                    stale.append(f"{path.relative_to(ROOT)}: §{number}")
            if re.search(r"\bSPEC §", text):
                stale.append(f"{path.relative_to(ROOT)}: cites SPEC, which is not in this repository")
    assert len(cited) > 10
    assert not stale, "citations of missing sections:\n" + "\n".join(stale)


# modules that run a command when imported (`python -m …`)
ENTRY_POINTS = {f"{PACKAGE}.__main__", f"{PACKAGE}.training.__main__"}

IMPORT_EACH = """
import importlib, json, sys, traceback
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "pipeline_cocosnet" or m.startswith("pipeline_cocosnet.")]:
        del sys.modules[loaded]  # each module imports from a clean slate (third-party packages stay loaded)
    try:
        importlib.import_module(name)
    except BaseException as error:
        failures[name] = traceback.format_exception_only(type(error), error)[-1].strip()
print(json.dumps(failures))
"""


@pytest.mark.slow
def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    names = sorted(set(MODULES) - ENTRY_POINTS)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, "modules that fail to import on their own:\n" + "\n".join(f"{k}: {v}" for k, v in failures.items())
