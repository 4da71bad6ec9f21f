"""The packages are layers in the flow's order: a module imports only from its own package,
the core modules and the packages below it (the rule each package's docstring states)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MONITOR = Path(__file__).resolve().parents[1] / "monitor"
CORE = {"domain", "errors", "clock", "countries"}
# Lowest first. A package may import any package listed before it.
LAYERS = [
    "config",
    "intake",
    "classify",
    "store",
    "alerts",
    "events",
    "signals",
    "daemon",
    "web",
    "cli",
]


def _imported_packages(path: Path) -> set[str]:
    """The monitor packages (or 'core') a module imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "monitor":
                continue
            top = parts[1] if len(parts) > 1 else ""
            found.add("core" if top in CORE or top == "" else top)
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_lower_layers(package: str) -> None:
    allowed = {"core", package, *LAYERS[: LAYERS.index(package)]}
    wrong = {
        str(path.relative_to(MONITOR)): sorted(_imported_packages(path) - allowed)
        for path in sorted((MONITOR / package).rglob("*.py"))
        if _imported_packages(path) - allowed
    }
    assert wrong == {}


def test_the_core_modules_import_no_package() -> None:
    for name in CORE:
        assert _imported_packages(MONITOR / f"{name}.py") <= {"core"}, name


def test_every_package_is_a_layer() -> None:
    packages = {p.name for p in MONITOR.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS)
