"""The layering of docs/architecture.md holds: the import-linter contracts of pyproject.toml are kept, and no two
modules import each other, even through imports inside functions."""

from __future__ import annotations

import os
from collections.abc import Mapping, Set
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def import_cycles(imports: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is at least one import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return cycles


def project_imports() -> dict[str, set[str]]:
    """Which of the project's modules each imports, imports inside functions included and imports for type
    checking excluded. A module importing its own package (``sweeplab.run._retry`` -> ``sweeplab.run``) is no
    cycle worth reporting: the package is loaded before its modules."""
    graph = grimp.build_graph("sweeplab", "sweeplab_modules", exclude_type_checking_imports=True, cache_dir=None)
    return {
        module: {
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if not module.startswith(imported + ".")
        }
        for module in graph.modules
    }


def test_the_cycle_finder_finds_cycles() -> None:
    imports = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(imports) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert import_cycles(project_imports()) == []


def test_import_contracts_are_kept() -> None:
    previous = Path.cwd()
    os.chdir(ROOT)  # import-linter reads the contracts of the pyproject.toml in the working directory
    try:
        status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        os.chdir(previous)
    assert status == 0, "an import-linter contract of pyproject.toml is broken (see the output above)"
