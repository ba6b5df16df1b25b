"""Every app's `core/` stays pure Python: no Django, Channels, asgiref or psycopg import.

Method: parse every module under `*/core/` with `ast` and look at each import statement, so
the rule holds for imports inside functions too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("exchange", "quanta", "payments", "herald", "chronicler")
FORBIDDEN = ("django", "channels", "channels_redis", "asgiref", "psycopg", "daphne")


def core_modules() -> list[Path]:
    modules = [path for app in APPS for path in sorted((ROOT / app / "core").rglob("*.py"))]
    assert modules, "no core modules found"
    return modules


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_framework(path: Path) -> None:
    forbidden = imported_roots(path) & set(FORBIDDEN)
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_detector_sees_a_nested_django_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from django.db import models\n")
    assert "django" in imported_roots(module)
