"""The LLM layer knows no task: nothing under ``crmpilot.llm`` imports the task definitions."""

from __future__ import annotations

import ast
from pathlib import Path

import crmpilot.llm

LLM_ROOT = Path(crmpilot.llm.__file__).parent
ABOVE = ("crmpilot.tasks", "crmpilot.enrichments", "crmpilot.crm", "crmpilot.warehouse", "crmpilot.cli")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_module_of_the_llm_layer_imports_a_layer_above_it() -> None:
    modules = sorted(LLM_ROOT.rglob("*.py"))
    assert len(modules) > 20  # the walk really sees the package
    offending = [
        f"{path.relative_to(LLM_ROOT)}:{line}: {name}"
        for path in modules
        for line, name in _imports(path)
        if name.startswith(ABOVE)
    ]
    assert offending == []


def test_the_check_sees_an_import_of_a_task(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("from crmpilot.tasks.taxonomy import Category\n")
    assert _imports(planted) == [(1, "crmpilot.tasks.taxonomy")]
