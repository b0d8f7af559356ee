"""MASH_SCHOOLS_FILE: the worker loads the schools directory it names instead of the shipped one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker import app as worker_app
from broker.errors import ConfigurationError
from broker.reference import DEFAULT_SCHOOLS
from broker.settings import Settings

SCHOOL = {"urn": "9123456", "name": "Synthetic Primary School 1", "authority": "E08900001", "phase": "PRIMARY",
          "start_time": "08:50", "open": True}


def test_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MASH_SCHOOLS_FILE sets `schools_file`; without it the setting is empty (the shipped file)."""
    monkeypatch.delenv("MASH_SCHOOLS_FILE", raising=False)
    assert Settings().schools_file is None
    monkeypatch.setenv("MASH_SCHOOLS_FILE", str(tmp_path / "schools.json"))
    assert Settings().schools_file == str(tmp_path / "schools.json")


def test_loader_reads_the_named_file(tmp_path: Path) -> None:
    """The worker's loader returns the schools of the named file, not those of the shipped directory."""
    path = tmp_path / "schools.json"
    path.write_text(json.dumps([SCHOOL]), encoding="utf-8")
    schools = worker_app._load_schools(Settings(schools_file=str(path)))
    assert list(schools) == ["9123456"] and schools["9123456"].authority == "E08900001"


def test_loader_defaults_to_the_shipped_file() -> None:
    """Without the setting the loader reads broker/data/reference/schools.json, as before."""
    shipped = {row["urn"] for row in json.loads(DEFAULT_SCHOOLS.read_text(encoding="utf-8"))}
    assert set(worker_app._load_schools(Settings())) == shipped


def test_create_app_refuses_a_missing_named_file(tmp_path: Path) -> None:
    """create_app refuses to start naming the file the setting points at when it is missing (no Kafka needed)."""
    missing = tmp_path / "national" / "schools.json"
    settings = Settings(topic_prefix="schools-setting", kafka_bootstrap="127.0.0.1:1",
                        worker_data_dir=str(tmp_path / "w"), schools_file=str(missing))
    with pytest.raises(ConfigurationError, match=str(missing)):
        worker_app.create_app(settings)
