"""The installable package: the wheel built from this tree, installed WITHOUT extras in a fresh virtualenv, gives a
working `mash` (every sub-command's --help, `mash deadline ... --school URN` with the packaged schools directory),
ships its schemas and reference data, and needs no development tool (Apache avro) to run.

Building and installing takes a minute or so (dependencies come from pip's cache or the index), hence the
integration mark; the fast checks below it run with the unit tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]


def command_paths() -> list[tuple[str, ...]]:
    """Every command and command group of `mash`, as argument paths (("",) is `mash` itself)."""
    from mash.cli import app

    out: list[tuple[str, ...]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        out.append(path)
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):  # a group: its commands
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return out


def test_every_command_is_found() -> None:
    """The walk over `mash` finds its groups and leaf commands (so the packaged check is not vacuous)."""
    paths = command_paths()
    for expected in [(), ("publish",), ("worker",), ("deadline",), ("schemas", "publish"), ("schemas", "generate"),
                     ("topics", "apply"), ("summary",), ("simulate",), ("fuzz",)]:
        assert expected in paths


def test_catalogue_does_not_import_apache_avro() -> None:
    """Importing the CLI and the schema catalogue loads no `avro` module: it is imported only to check
    compatibility (`mash schemas generate`)."""
    code = ("import sys, mash.cli, schemas.catalogue, schemas.codec, broker.admin; "
            "sys.exit(1 if any(m == 'avro' or m.startswith('avro.') for m in sys.modules) else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this tree."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=wheels, timeout=600)
    (built,) = wheels.glob("mash_broker-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the wheel installed, no extras; yields its bin directory."""
    venv = tmp_path_factory.mktemp("packaging") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel)], check=True, cwd=venv, timeout=900)
    yield venv / "bin"


def run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a program of the fresh virtualenv outside the source tree (so nothing is imported from it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MASH_", "VIRTUAL_ENV"))}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=bin_dir, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.integration
def test_wheel_ships_schemas_and_reference_data(wheel: Path) -> None:
    """The wheel holds every committed .avsc and the reference schools, organisations and holidays."""
    names = set(zipfile.ZipFile(wheel).namelist())
    committed = {str(p.relative_to(ROOT)) for p in (ROOT / "schemas" / "avro").glob("*/v*.avsc")}
    assert committed and committed <= names
    for data in ["broker/data/reference/schools.json", "broker/data/reference/organisations.json"]:
        assert data in names
    assert any(n.startswith("broker/data/school_holidays/") for n in names)


@pytest.mark.integration
def test_installed_mash_runs_every_help_without_extras(installed: Path) -> None:
    """Every `mash` sub-command answers --help from the installed package, and Apache avro is not installed."""
    for path in command_paths():
        done = run(installed, "mash", *path, "--help")
        assert done.returncode == 0, f"mash {' '.join(path)} --help: {done.stderr[-2000:]}"
        assert "Usage:" in done.stdout and "Traceback" not in done.stderr
    probe = run(installed, "python", "-c", "import avro")
    assert probe.returncode != 0 and "No module named 'avro'" in probe.stderr


@pytest.mark.integration
def test_installed_deadline_uses_the_packaged_schools_directory(installed: Path) -> None:
    """`mash deadline encompass --school URN` finds the school in the schools directory shipped in the package."""
    schools = json.loads((ROOT / "broker" / "data" / "reference" / "schools.json").read_text())
    school = next(s for s in schools if s["open"] and s["authority"] == "E06000051")
    done = run(installed, "mash", "deadline", "encompass", "--at", "2026-03-27T18:00:00+00:00",
               "--school", school["urn"])
    assert done.returncode == 0, done.stderr
    due = datetime.fromisoformat(done.stdout.strip())
    assert due > datetime(2026, 3, 27, 18, tzinfo=UTC) and due.utcoffset() is not None
    located = run(installed, "python", "-c",
                  "from broker.reference import DEFAULT_SCHOOLS, load_schools; "
                  "print(DEFAULT_SCHOOLS); print(len(load_schools()))")
    assert located.returncode == 0, located.stderr
    path, count = located.stdout.split()
    assert "site-packages" in path and int(count) == len(schools)
