"""The packages are layered: schemas at the bottom, broker and producers above it, mash on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "schemas": {"broker", "producers", "consumers", "mash"},
    "broker": {"producers", "mash"},
    "producers": {"broker", "mash"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level package of every absolute import in a module (relative imports stay in the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def violations(package: str) -> list[str]:
    """`file: imports X` for every module of `package` importing a package above it."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for bad in sorted(imported_packages(path) & FORBIDDEN[package]):
            out.append(f"{path.relative_to(ROOT)}: imports {bad}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    """No module of schemas, broker or producers imports a package of a higher layer (even lazily)."""
    assert violations(package) == []


def test_checker_sees_lazy_imports(tmp_path: Path) -> None:
    """The checker finds imports inside functions and `from x.y import z` forms, not only top-level ones."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from producers.cli import register\n    import mash.cli\n")
    assert imported_packages(module) == {"producers", "mash"}
