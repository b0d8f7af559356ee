"""`mash web ...`: the people's pages: database migrations, accounts, the web app, the view consumer and the
morning alert scheduler (each its own process, or all three in one with `mash web up`)."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from broker.logs import configure_logging
from broker.settings import Settings
from broker.topics import catalogue
from consumers.settings import WebSettings

if TYPE_CHECKING:
    import uvicorn

    from consumers.acknowledge import KafkaAckSink
    from consumers.database import Database

__all__ = ["register", "web_app"]

web_app = typer.Typer(help="The people's pages: school feed web app, views, morning alert, accounts",
                      no_args_is_help=True)
account_app = typer.Typer(help="Sign-in accounts (role + scope)", no_args_is_help=True)
web_app.add_typer(account_app, name="account")


def register(app: typer.Typer) -> None:
    """Add `mash web` to the `mash` command."""
    app.add_typer(web_app, name="web")


def _db() -> tuple[WebSettings, Database]:
    from consumers.database import Database, migrate

    web = WebSettings()
    migrate(web.database_url)
    return web, Database(web.database_url)


@web_app.command("migrate")
def migrate_cmd() -> None:
    """Bring the database schema to the newest migration (idempotent)."""
    _db()
    typer.echo("database is at the newest migration")


def _password(env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            typer.echo(f"error: environment variable {env} is empty", err=True)
            raise typer.Exit(2)
        return value
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@account_app.command("add")
def account_add(
    username: str = typer.Argument(..., help="account name (letters, digits, hyphens)"),
    role: str = typer.Option(..., help="SCHOOL_DSL, FRONT_DOOR, TRIAGE_CHAIR, EMERGENCY_DUTY or OPERATIONS"),
    scope: str = typer.Option("", help="school URN (SCHOOL_DSL) or authority ONS code; empty for OPERATIONS"),
    email: str | None = typer.Option(None, help="work email for the morning alert (school accounts)"),
    password_env: str | None = typer.Option(None, help="read the password from this environment variable"),
) -> None:
    """Create an account; the password is prompted for (or read from --password-env), never an argument."""
    from consumers.auth import AccountError, create_account
    from consumers.roles import Role

    try:
        kind = Role(role.upper())
    except ValueError:
        typer.echo(f"error: unknown role; choose from {', '.join(r.value for r in Role)}", err=True)
        raise typer.Exit(2) from None
    password = _password(password_env)
    _, db = _db()
    try:
        with db.session() as s, s.begin():
            account = create_account(s, username, password, kind, scope, email, datetime.now(UTC))
            typer.echo(f"account {account.username} ({kind.value} {scope or '-'}) created")
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@account_app.command("disable")
def account_disable(username: str = typer.Argument(..., help="account name")) -> None:
    """Disable an account and end its sessions."""
    from sqlalchemy import delete, select

    from consumers.tables import Account, WebSession

    _, db = _db()
    with db.session() as s, s.begin():
        account = s.scalar(select(Account).where(Account.username == username))
        if account is None:
            typer.echo("error: no such account", err=True)
            raise typer.Exit(2)
        account.active = False
        s.execute(delete(WebSession).where(WebSession.account_id == account.id))
    typer.echo(f"account {username} disabled")


@web_app.command("demo-accounts")
def demo_accounts(count: int = typer.Option(3, help="schools to make a demo DSL account for"),
                  authorities: int = typer.Option(2, help="authorities to make front door, triage, EDT accounts for"),
                  ) -> None:
    """Demo DSL accounts (dsl-<URN>) for the schools with most notices, and frontdoor-, triage- and edt-<ONS code>
    accounts for the authorities with most referrals; new random passwords each time."""
    from consumers.demo import make_demo_accounts

    if Settings().profile == "production":
        typer.echo("error: no demo accounts in production", err=True)
        raise typer.Exit(2)
    web, db = _db()
    for username, urn, notices, password in make_demo_accounts(db, count):
        typer.echo(f"{web.public_url}  account {username}  password {password}  (school {urn}, {notices} notices)")
    from consumers.authority_demo import make_authority_accounts

    for username, role, authority, password in make_authority_accounts(db, authorities):
        typer.echo(f"{web.public_url}  account {username}  password {password}  ({role.value}, authority {authority})")
    from consumers.ops_view import make_ops_account

    username, password = make_ops_account(db)
    typer.echo(f"{web.public_url}/operations  account {username}  password {password}  (OPERATIONS dashboard)")


def _topics(settings: Settings) -> dict[str, list[Any]]:
    from consumers.authority_view import ACK_RECORDS, authority_topics
    from consumers.ops_view import ops_topics
    from schemas.models import EncompassNotice, Recall

    cat = catalogue(settings.topic_prefix)
    return {cat.name("route.encompass"): [EncompassNotice, Recall],
            cat.name("feedback.acknowledgements"): list(ACK_RECORDS), **authority_topics(settings.topic_prefix),
            **ops_topics(settings.topic_prefix)}


def _ack_sink(settings: Settings, web: WebSettings) -> KafkaAckSink:
    from consumers.authority_view import ACK_RECORDS
    from consumers.codec import make_codec
    from consumers.feedback import KafkaFeedbackSink

    topic = catalogue(settings.topic_prefix).name("feedback.acknowledgements")
    return KafkaFeedbackSink(settings.kafka_bootstrap, topic,
                             lambda: make_codec(settings.registry_url, {topic: list(ACK_RECORDS)}),
                             web.ack_timeout_seconds, settings.kafka_auth())


def _server(settings: Settings, web: WebSettings, db: Database) -> uvicorn.Server:
    import uvicorn

    from consumers.web.app import create_app

    app = create_app(web, db, _ack_sink(settings, web))
    return uvicorn.Server(uvicorn.Config(app, host=web.host, port=web.port, log_level="warning"))


async def _views(settings: Settings, web: WebSettings, db: Database, stop: asyncio.Event, rebuild: bool) -> None:
    from consumers.codec import close, make_codec
    from consumers.view_consumer import ViewConsumer, rebuild_views

    topics = _topics(settings)
    codec = await make_codec(settings.registry_url, topics)
    try:
        if rebuild:
            await rebuild_views(db, codec, settings.kafka_bootstrap, list(topics), settings.registry_url,
                                settings.kafka_auth())
        group = f"{settings.topic_prefix}.{web.consumer_group}"
        consumer = ViewConsumer(db, codec, settings.kafka_bootstrap, list(topics), group, settings.kafka_auth())
        await consumer.start()
        try:
            await consumer.run(stop)
        finally:
            await consumer.stop()
    finally:
        await close(codec)


@web_app.command("serve")
def serve() -> None:
    """The web app (MASH_WEB_HOST:MASH_WEB_PORT)."""
    settings = Settings()
    configure_logging(json=settings.log_json)
    web, db = _db()
    _server(settings, web, db).run()


@web_app.command("views")
def views(rebuild: bool = typer.Option(False, help="empty the views and re-read the topics first")) -> None:
    """The view consumer: route.encompass, the authority route topics and feedback.acknowledgements into the
    database, forever."""
    settings = Settings()
    configure_logging(json=settings.log_json)
    web, db = _db()
    asyncio.run(_views(settings, web, db, asyncio.Event(), rebuild))


@web_app.command("alerts")
def alerts(once: bool = typer.Option(False, help="one pass, then exit")) -> None:
    """The morning alert scheduler (MASH_WEB_ALERT_TIME, default 07:30 Europe/London, on school days)."""
    from consumers.alerts import run_alerts

    configure_logging(json=Settings().log_json)
    web, db = _db()
    run_alerts(db, web, once=once)


async def _up(settings: Settings, web: WebSettings, db: Database) -> None:
    from consumers.alerts import run_alerts

    stop = asyncio.Event()
    threading.Thread(target=run_alerts, args=(db, web), daemon=True, name="alerts").start()
    views_task = asyncio.create_task(_views(settings, web, db, stop, False))
    try:
        await _server(settings, web, db).serve()
    finally:
        stop.set()
        await views_task


@web_app.command("up")
def up() -> None:
    """The web app, the view consumer and the alert scheduler in one process (for `make run`)."""
    settings = Settings()
    configure_logging(json=settings.log_json)
    web, db = _db()
    asyncio.run(_up(settings, web, db))
