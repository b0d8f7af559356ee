"""`mash deadline`: print when an Encompass notice, front door decision or DV triage item is due.

The lead's broker/cli.py calls `register(app)`.  This is the edge: it may read the clock (when --at is
omitted) and the schools file; the rules themselves live in broker.deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from broker.authority import AuthorityConfig, UnknownAuthority, authority
from broker.deadline import (
    Deadline,
    InvalidRag,
    dvtriage_deadline,
    encompass_deadline,
    frontdoor_deadline,
)
from broker.errors import ConfigurationError
from broker.reference import DEFAULT_SCHOOLS, School, load_schools

__all__ = ["Kind", "register"]

EXAMPLE_AT = "2026-03-27T18:00:00+00:00"


class Kind(StrEnum):
    """Which deadline to compute."""

    encompass = "encompass"
    frontdoor = "frontdoor"
    dvtriage = "dvtriage"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _parse_at(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        _fail(f"--at must be an ISO-8601 instant with a UTC offset, e.g. {EXAMPLE_AT}")
    if value.tzinfo is None or value.utcoffset() is None:
        _fail(f"--at must carry a UTC offset, e.g. {EXAMPLE_AT}")
    return value


def _find_school(urn: str, schools_file: Path) -> School:
    try:
        schools = load_schools(schools_file)
    except ConfigurationError as exc:
        _fail(str(exc))
    school = schools.get(urn.strip())
    if school is None:
        _fail(f"unknown school URN {urn.strip()} in {schools_file}")
    return school


def _resolve_authority(code: str | None, school: School | None) -> AuthorityConfig:
    if school is not None:
        if code is not None and code.strip().upper() != school.authority:
            _fail(f"school {school.urn} belongs to authority {school.authority}, not the --authority given")
        code = school.authority
    if code is None:
        _fail("--authority (an ONS code such as E06000051) or --school is required")
    try:
        return authority(code.strip().upper())
    except UnknownAuthority as exc:
        _fail(str(exc))


def register(app: typer.Typer, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Add the `deadline` command to `app`; `now` supplies the instant when --at is omitted."""

    @app.command("deadline")
    def deadline(
        kind: Annotated[Kind, typer.Argument(help="encompass, frontdoor or dvtriage")],
        at: Annotated[
            str | None,
            typer.Option(
                "--at", help=f"the instant reported/received, with offset, e.g. {EXAMPLE_AT}; default: now"
            ),
        ] = None,
        authority_code: Annotated[
            str | None,
            typer.Option("--authority", help="ONS code of the local authority (implied by --school)"),
        ] = None,
        school_urn: Annotated[
            str | None,
            typer.Option("--school", help="school URN: its start time and authority are used"),
        ] = None,
        schools_file: Annotated[
            Path, typer.Option("--schools-file", help="reference schools JSON file")
        ] = DEFAULT_SCHOOLS,
        rag: Annotated[
            str | None, typer.Option("--rag", help="front door RAG rating: RED, AMBER or GREEN")
        ] = None,
    ) -> None:
        """Print the deadline as an ISO-8601 instant in Europe/London time."""
        instant = now() if at is None else _parse_at(at)
        school = None if school_urn is None else _find_school(school_urn, schools_file)
        config = _resolve_authority(authority_code, school)
        if rag is not None and kind is not Kind.frontdoor:
            _fail("--rag applies to frontdoor deadlines only")
        result: Deadline
        if kind is Kind.encompass:
            if school is not None and not school.open:
                typer.echo(f"warning: school {school.urn} is recorded as closed", err=True)
            start = None if school is None else school.start_time
            result = encompass_deadline(instant, config, start)
        elif kind is Kind.frontdoor:
            try:
                result = frontdoor_deadline(instant, config, rag)
            except InvalidRag as exc:
                _fail(f"--{exc}")
        else:
            result = dvtriage_deadline(instant, config)
        if not result.verified:
            first = result.unverified_days[0].isoformat()
            typer.echo(
                f"warning: calendar unverified for {config.ons_code} on {first}: fell back to working days",
                err=True,
            )
        typer.echo(result.local.isoformat())
