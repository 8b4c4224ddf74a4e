"""Structure of the package: the library never imports its script layers, has no import cycle,
and spells run-dir / bundle file names in one module only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scae_tf"
SCRIPT_PACKAGES = ("benchmarks", "export")
NAMES_MODULE = "scae_tf.artifacts.names"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path) -> list[str]:
    """Every module name imported anywhere in the file (also inside functions and TYPE_CHECKING)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found += [f"{base}.{alias.name}" for alias in node.names]  # a module, or a name in module `base`
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imports(module, path):
            while name and name not in modules:  # `from a.b import f` imports module a.b (not package a)
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_library_never_imports_its_scripts():
    offenders = [
        f"{module} imports {name}"
        for module, path in _modules().items()
        for name in _imports(module, path)
        if name.split(".")[0] in SCRIPT_PACKAGES
    ]
    assert offenders == []


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_file_names_are_spelled_in_one_module():
    from scae_tf.artifacts import names

    spelled = {value for value in vars(names).values() if isinstance(value, str) and "." in value}
    spelled |= {value for value in (*names.KERAS_MODELS.values(), *names.TFLITE_MODELS.values())}
    spelled |= {names.CHECKPOINTS}
    offenders = []
    for module, path in _modules().items():
        if module == NAMES_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in spelled:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value!r}")
    assert offenders == []
