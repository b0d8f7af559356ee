"""`mash`: the operator's command line. The broker's commands (topics, schemas, worker, deadline, summary),
the producers' (publish) and the steps that need both (simulate, fuzz). Run as `mash` or `python -m mash.cli`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from broker import cli as broker_cli
from broker.errors import BrokerError
from broker.settings import Settings
from producers import cli as producer_cli

__all__ = ["app", "main"]

app = typer.Typer(help="Multi-agency safeguarding notification broker", no_args_is_help=True)
broker_cli.register(app)
producer_cli.register(app, Settings)
__import__("mash.school").school.register(app)  # `mash web ...`: the people's pages
__import__("mash.sla").sla.register(app)  # `mash sla report`: SLA compliance from the sla.events topic


def _fail(exc: BrokerError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@app.command()
def simulate(
    count: int = typer.Option(200, help="notifications"),
    seed: int = typer.Option(7, help="random seed"),
    start: str | None = typer.Option(
        None, help="first instant (ISO-8601 with offset; default 2026-11-20T18:00:00+00:00, "
                   "--national 2025-04-01T00:00:00+01:00)"),
    out: Path | None = typer.Option(None, "--out", help="write one JSON Lines file per agency here instead"),
    national: bool = typer.Option(False, "--national", help="England's mix (153 authorities, ~24,500 schools) over "
                                                             "--hours, streamed to --out"),
    hours: float = typer.Option(8760.0, help="--national: the span in hours (a year)"),
    write_reference: Path | None = typer.Option(
        None, "--write-reference", help="--national: also write its schools.json (the worker's MASH_SCHOOLS_FILE) "
                                        "and organisations.json here"),
) -> None:
    """Publish a simulated night from all four agencies through the SDK (or write it as files with --out); with
    --national, write a year of England to --out (`python -m benchmarks.year` replays it)."""
    from mash.night import publish_night, write_night

    if national or write_reference is not None:
        _simulate_national(count=count, seed=seed, start=start, out=out, hours=hours, reference=write_reference)
        return
    start = start or "2026-11-20T18:00:00+00:00"
    if out is not None:
        written = write_night(out, count=count, seed=seed, start=start)
        typer.echo(json.dumps(written))
        return
    try:
        counts = asyncio.run(publish_night(Settings(), count=count, seed=seed, start=start))
    except BrokerError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps(counts))


def _simulate_national(*, count: int, seed: int, start: str | None, out: Path | None, hours: float,
                       reference: Path | None) -> None:
    from mash.year import YEAR_START, write_year
    from producers.national import write_national_reference

    if reference is not None:
        typer.echo(json.dumps([str(p) for p in write_national_reference(reference)]))
    if out is not None:
        typer.echo(json.dumps(write_year(out, count=count, seed=seed, start=start or YEAR_START, hours=hours)))
    elif reference is None:
        typer.echo("error: --national: give --out DIR (a year is written, not published; python -m benchmarks.year "
                   "publishes it)", err=True)
        raise typer.Exit(2)


@app.command()
def fuzz(
    count: int = typer.Option(2000, help="records (about 90% bad, 10% valid)"),
    seed: int = typer.Option(1, help="random seed"),
    timeout: float = typer.Option(600.0, help="seconds to wait for every outcome"),
) -> None:
    """Publish fuzzed records raw to the intake topics; check each bad one is dead-lettered once, each valid
    one accepted. Exit 1 if any record is missing or dead-lettered twice."""
    from mash.fuzz import run_fuzz

    try:
        report = asyncio.run(run_fuzz(Settings(), count=count, seed=seed, timeout=timeout))
    except BrokerError as exc:
        _fail(exc)
        return
    typer.echo("\n".join(report.lines()))
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the `mash` command."""
    app()


if __name__ == "__main__":
    main()
