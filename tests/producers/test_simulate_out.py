"""`mash simulate --out DIR`: one JSON Lines file per agency, each accepted line for line by `mash publish`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from mash.cli import app
from mash.night import FILE_NAMES
from producers.cli import AGENCIES, read_lines, validate_lines

START = "2026-11-02T18:00:00+00:00"
NOW = datetime(2026, 11, 4, 12, tzinfo=UTC)


def test_simulate_out_writes_files_publish_accepts(tmp_path: Path) -> None:
    """Every file written is named after a `--agency` value and every one of its lines validates cleanly."""
    result = CliRunner().invoke(app, ["simulate", "--count", "400", "--seed", "5", "--start", START,
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert sum(written.values()) == 400
    assert set(written) == {p.name for p in tmp_path.iterdir()} == set(FILE_NAMES.values())
    for path in tmp_path.iterdir():
        agency = AGENCIES[path.stem]
        valid, errors = validate_lines(read_lines(path.read_bytes()), agency, NOW)
        assert errors == [] and len(valid) == written[path.name]


def test_every_file_name_is_an_agency_value() -> None:
    """The four file names are `--agency` values of `mash publish` for their own agency."""
    assert {AGENCIES[name.removesuffix(".jsonl")] for name in FILE_NAMES.values()} == set(FILE_NAMES)
    assert all(AGENCIES[name.removesuffix(".jsonl")] is agency for agency, name in FILE_NAMES.items())


def test_small_night_writes_only_agencies_that_sent(tmp_path: Path) -> None:
    """With too few records for every agency, no empty file is written (publish would refuse it)."""
    result = CliRunner().invoke(app, ["simulate", "--count", "3", "--start", START, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert all(p.stat().st_size > 0 for p in tmp_path.iterdir())
    assert sum(json.loads(result.output).values()) == 3
