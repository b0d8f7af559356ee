"""`mash`: the operator's command line (topics, schemas, worker, publish, deadline, run)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import typer

from broker import _cli_deadline
from broker.errors import BrokerError
from broker.settings import Settings
from producers import cli as producer_cli

__all__ = ["app", "main"]

app = typer.Typer(help="Multi-agency safeguarding notification broker", no_args_is_help=True)
topics_app = typer.Typer(help="The topic catalogue", no_args_is_help=True)
schemas_app = typer.Typer(help="The Avro schema catalogue", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
_cli_deadline.register(app)
producer_cli.register(app)


def _fail(exc: BrokerError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@topics_app.command("apply")
def topics_apply() -> None:
    """Create missing topics and correct drifted configuration (idempotent)."""
    from broker.admin import apply_topics

    try:
        changes = asyncio.run(apply_topics(Settings()))
    except BrokerError as exc:
        _fail(exc)
        return
    for c in changes:
        typer.echo(f"{c.action:9} {c.topic} {c.detail}".rstrip())


@topics_app.command("list")
def topics_list() -> None:
    """Print the catalogue for the configured prefix and profile."""
    from broker.topics import catalogue

    s = Settings()
    cat = catalogue(s.topic_prefix)
    for spec in cat.specs:
        cfg = ",".join(f"{k}={v}" for k, v in sorted(spec.config(s.profile).items()))
        typer.echo(f"{cat.name(spec.name)} kind={spec.kind.value} partitions={spec.partitions} {cfg}")


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Write a new .avsc version for each changed model; refuses a change that is not FULL_TRANSITIVE."""
    from schemas.catalogue import generate

    try:
        written = generate()
    except BrokerError as exc:
        _fail(exc)
        return
    typer.echo("\n".join(written) if written else "schemas up to date")


@schemas_app.command("publish")
def schemas_publish() -> None:
    """Publish every schema version to the compacted catalogue topic."""
    from broker.admin import publish_schemas

    try:
        n = asyncio.run(publish_schemas(Settings()))
    except BrokerError as exc:
        _fail(exc)
        return
    typer.echo(f"published {n} schema versions")


def _dump_tasks(out: object = None) -> None:
    """Print every asyncio task's await chain (file:line per frame) to stderr: diagnoses a stalled worker."""
    for task in asyncio.all_tasks():
        print(f"task {task.get_name()}", file=sys.stderr)
        coro: object = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is not None:
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}", file=sys.stderr)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)


@app.command()
def worker() -> None:
    """Run the stream worker (intake, identity, routing) until interrupted."""
    from faust import Worker

    from broker.app import create_app

    settings = Settings()
    faust_app = create_app(settings)
    sys.argv = sys.argv[:1]

    class _Worker(Worker):
        def _install_signal_handlers_unix(self) -> None:
            super()._install_signal_handlers_unix()
            # `kill -QUIT <pid>`, as a JVM thread dump: print every task's await chain.
            self.loop.add_signal_handler(signal.SIGQUIT, _dump_tasks)

    _Worker(faust_app, loglevel=settings.faust_log_level).execute_from_commandline()


@app.command()
def simulate(
    count: int = typer.Option(200, help="notifications"),
    seed: int = typer.Option(7, help="random seed"),
    start: str = typer.Option("2026-11-20T18:00:00+00:00", help="start of the night (ISO-8601 with offset)"),
) -> None:
    """Publish a simulated night from all four agencies through the SDK."""
    from broker.run import publish_night

    try:
        counts = asyncio.run(publish_night(Settings(), count=count, seed=seed, start=start))
    except BrokerError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps(counts))


@app.command()
def summary(
    wait: float = typer.Option(0.0, help="seconds to wait for the routed topics to settle"),
) -> None:
    """Print what is on each topic, read back from the topics."""
    from broker.run import print_summary

    asyncio.run(print_summary(Settings(), settle=wait))


def main() -> None:
    """Entry point of the `mash` command."""
    app()


if __name__ == "__main__":
    main()
