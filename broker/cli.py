"""The broker's own commands (topics, schemas, worker, deadline, summary), composed into `mash` by mash.cli.

`python -m broker.cli` runs just these (the full `mash`, with publish, simulate and fuzz, is `python -m mash.cli`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from broker import _cli_deadline
from broker.errors import BrokerError
from broker.settings import Settings

__all__ = ["app", "main", "register"]


def _fail(exc: BrokerError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


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


def topics_list() -> None:
    """Print the catalogue for the configured prefix and profile."""
    from broker.topics import catalogue

    s = Settings()
    cat = catalogue(s.topic_prefix)
    for spec in cat.specs:
        cfg = ",".join(f"{k}={v}" for k, v in sorted(spec.config(s.profile).items()))
        typer.echo(f"{cat.name(spec.name)} kind={spec.kind.value} partitions={spec.partitions} {cfg}")


def schemas_generate() -> None:
    """Write a new .avsc version for each changed model; refuses a change that is not FULL_TRANSITIVE."""
    from schemas.catalogue import generate

    try:
        written = generate()
    except BrokerError as exc:
        _fail(exc)
        return
    typer.echo("\n".join(written) if written else "schemas up to date")


def schemas_publish() -> None:
    """Register every schema version in the schema registry, under each topic's subjects (FULL_TRANSITIVE)."""
    from broker.admin import publish_schemas

    settings = Settings()
    try:
        done = asyncio.run(publish_schemas(settings))
    except BrokerError as exc:
        _fail(exc)
        return
    subjects = {r.subject for r in done}
    typer.echo(f"registered {len(done)} schema versions under {len(subjects)} subjects at {settings.registry_url}")


def worker() -> None:
    """Run the stream worker (intake, identity, routing) until interrupted."""
    from broker.app import run_worker

    try:
        run_worker(Settings())
    except BrokerError as exc:  # refused to start, e.g. no schools directory: exit 2 with the reason
        _fail(exc)


def summary(
    wait: float = typer.Option(0.0, help="seconds to wait for the routed topics to settle"),
) -> None:
    """Print what is on each topic, read back from the topics."""
    from broker.run import print_summary

    asyncio.run(print_summary(Settings(), settle=wait))


def acls_apply() -> None:
    """Bring the broker's ACLs to the declarations of broker.acls (idempotent; run as the admin identity)."""
    from broker.acl_admin import apply_acls

    try:
        changes = asyncio.run(apply_acls(Settings()))
    except BrokerError as exc:
        _fail(exc)
        return
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("created", "deleted", "unchanged")}
    for c in changes:
        if c.action != "unchanged":
            typer.echo(f"{c.action:9} {c.principal} {c.operation} {c.resource}")
    typer.echo(", ".join(f"{n} {a}" for a, n in counts.items()))


def acls_list() -> None:
    """Print the declared grants for the configured prefix (principal, operations, resource)."""
    from broker.acls import grants

    for g in grants(Settings().topic_prefix):
        star = "*" if g.pattern.value == "prefixed" else ""
        typer.echo(f"{g.principal:20} {','.join(g.operations):40} {g.resource_type.value}:{g.name}{star}")


def deploy_render(
    out: Path = typer.Option(Path("deploy"), help="directory to write into (k8s/, compose.yaml, ...)"),
    check: bool = typer.Option(False, help="write nothing; exit 1 if a file differs from a fresh render"),
) -> None:
    """Write the Strimzi resources and the compose file generated from the topic catalogue and the ACLs."""
    from broker.manifests import rendered

    stale = []
    for name, text in rendered(Settings().topic_prefix).items():
        path = out / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        typer.echo(f"wrote {path}")
    if stale:
        typer.echo("stale (run `mash deploy render`): " + ", ".join(stale), err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the broker's commands to a CLI: topics, schemas, worker, deadline, summary."""
    topics_app = typer.Typer(help="The topic catalogue", no_args_is_help=True)
    schemas_app = typer.Typer(help="The Avro schemas: versioned files and the schema registry", no_args_is_help=True)
    topics_app.command("apply")(topics_apply)
    topics_app.command("list")(topics_list)
    schemas_app.command("generate")(schemas_generate)
    schemas_app.command("publish")(schemas_publish)
    app.add_typer(topics_app, name="topics")
    app.add_typer(schemas_app, name="schemas")
    acls_app = typer.Typer(help="The broker's ACLs (broker.acls)", no_args_is_help=True)
    acls_app.command("apply")(acls_apply)
    acls_app.command("list")(acls_list)
    app.add_typer(acls_app, name="acls")
    deploy_app = typer.Typer(help="Deployment files (Strimzi resources, compose) from the catalogue and ACLs",
                             no_args_is_help=True)
    deploy_app.command("render")(deploy_render)
    app.add_typer(deploy_app, name="deploy")
    app.command()(worker)
    _cli_deadline.register(app)
    app.command()(summary)


app = typer.Typer(help="Multi-agency safeguarding notification broker (broker commands)", no_args_is_help=True)
register(app)


def main() -> None:
    """Entry point of `python -m broker.cli`."""
    app()


if __name__ == "__main__":
    main()
