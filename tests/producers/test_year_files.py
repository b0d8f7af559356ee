"""`mash simulate --national --out DIR`: a national year as agency files, read back lazily by `mash.year`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from broker.reference import load_schools
from mash.cli import app
from mash.night import FILE_NAMES
from mash.year import YEAR_START, read_year, write_year
from producers.national import year
from producers.simulator import to_jsonl


def test_simulate_national_writes_agency_files_and_reference(tmp_path: Path) -> None:
    """The command writes one file per agency (the counts it prints) and the national schools file the worker
    loads (MASH_SCHOOLS_FILE)."""
    out, ref = tmp_path / "year", tmp_path / "ref"
    result = CliRunner().invoke(app, ["simulate", "--national", "--count", "400", "--seed", "2", "--out", str(out),
                                      "--write-reference", str(ref)])
    assert result.exit_code == 0, result.output
    written = json.loads(result.output.splitlines()[-1])
    assert sum(written.values()) == 400 and set(written) == set(FILE_NAMES.values())
    assert {p.name: len(p.read_text().splitlines()) for p in out.iterdir()} == written
    assert len(load_schools(ref / "schools.json")) > 24_000


def test_simulate_national_without_out_is_refused() -> None:
    """Without --out (or --write-reference) the command exits 2 naming --out: a year is written, not published."""
    result = CliRunner().invoke(app, ["simulate", "--national", "--count", "10"])
    assert result.exit_code == 2 and "--out" in result.output


def test_read_year_gives_back_what_was_written_in_produced_order(tmp_path: Path) -> None:
    """Reading the files back (validated as `mash publish` would) yields the same notifications in produced
    order as the generator yielded them."""
    write_year(tmp_path, count=300, seed=9)
    back = list(read_year(tmp_path))
    produced = [r.envelope.produced for r in back]  # type: ignore[attr-defined]
    assert len(back) == 300 and produced == sorted(produced)
    assert to_jsonl(back) == to_jsonl(year(datetime.fromisoformat(YEAR_START), seed=9, count=300))
