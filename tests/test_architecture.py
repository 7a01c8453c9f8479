"""The map of rooms (DESIGN.md "Layout") as a test: every module imports on its own, in a fresh
interpreter (no circular imports), and the pure rooms never reach for the network."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import reconciler

PACKAGE_ROOT = Path(reconciler.__file__).parent

# Rooms that must stay free of HTTP and process spawning: they are pure or only read files.
PURE_ROOMS = {"plan": {"httpx", "requests", "subprocess"}, "spec": {"httpx", "requests", "subprocess"}}


def _modules() -> list[str]:
    names = (m.name for m in pkgutil.walk_packages([str(PACKAGE_ROOT)], prefix="reconciler."))
    return sorted(n for n in names if not n.endswith("__main__"))


def test_every_module_imports_alone() -> None:
    # One interpreter per module would be slow; importing each in a loop, each after clearing
    # the package from sys.modules, catches the same cycles.
    script = (
        "import importlib, sys\n"
        f"mods = {_modules()!r}\n"
        "failed = []\n"
        "for name in mods:\n"
        "    for loaded in [m for m in sys.modules if m == 'reconciler' or m.startswith('reconciler.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_pure_rooms_do_not_import_io_libraries() -> None:
    offenders = []
    for room, banned in PURE_ROOMS.items():
        for path in (PACKAGE_ROOT / room).rglob("*.py"):
            bad = _imported_roots(path) & banned
            if bad:
                offenders.append(f"{path.relative_to(PACKAGE_ROOT)} imports {sorted(bad)}")
    assert not offenders, offenders


def test_modules_stay_small() -> None:
    too_big = []
    for path in PACKAGE_ROOT.rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > 600:
            too_big.append(f"{path.relative_to(PACKAGE_ROOT)}: {lines} lines")
    assert not too_big, too_big
