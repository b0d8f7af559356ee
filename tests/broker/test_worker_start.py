"""The worker refuses to start without a schools directory (clear error, exit 2) instead of routing with none."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker import app as worker_app
from broker import cli
from broker.errors import ConfigurationError
from broker.reference import DEFAULT_SCHOOLS, load_schools
from broker.settings import Settings


def test_packaged_schools_directory_is_found() -> None:
    """The default schools directory is package data (broker/data/reference/) and loads."""
    assert DEFAULT_SCHOOLS.parent == Path(worker_app.__file__).resolve().parent / "data" / "reference"
    assert len(load_schools()) > 10


def test_create_app_refuses_a_missing_schools_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app raises ConfigurationError naming the schools file when it is missing (no Kafka needed)."""
    missing = tmp_path / "no-such" / "schools.json"
    monkeypatch.setattr(worker_app, "DEFAULT_SCHOOLS", missing)
    settings = Settings(topic_prefix="refuse", kafka_bootstrap="127.0.0.1:1", worker_data_dir=str(tmp_path / "w"))
    with pytest.raises(ConfigurationError, match="schools"):
        worker_app.create_app(settings)


def test_worker_command_exits_2_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mash worker` turns a refusal to start into `error: ...` on stderr and exit status 2, no traceback."""

    def refuse(settings: Settings) -> None:
        raise ConfigurationError("schools file not found: /nowhere/schools.json")

    monkeypatch.setattr(worker_app, "run_worker", refuse)
    result = CliRunner().invoke(cli.app, ["worker"])
    assert result.exit_code == 2
    assert "error: schools file not found" in result.output and "Traceback" not in result.output


def test_every_table_store_has_bounded_rocksdb_memory(tmp_path: Path) -> None:
    """Every worker table is created with the settings' RocksDB write buffer and block cache (faust's defaults,
    64 MB x 3 buffers and a 2 GB cache per store, let a worker's memory grow for as long as it writes)."""
    s = Settings(worker_data_dir=str(tmp_path), topic_prefix="rocks", metrics_port=0, table_write_buffer_mb=3,
                 table_block_cache_mb=5)
    app = worker_app.create_app(s)
    assert len(app.tables) >= 6
    for name, table in app.tables.items():
        assert table.options["write_buffer_size"] == 3 * 1024 * 1024, name
        assert table.options["block_cache_size"] == 5 * 1024 * 1024, name
        assert table.options["max_write_buffer_number"] == 2, name
