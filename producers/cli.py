"""`mash publish`: validate a JSON Lines file for an agency, then publish it.

Each line is `{"kind": "<record name>", "payload": {...}}`. Every record is validated first; each invalid
one is reported by line number, field path and rule (never the value). Nothing is published when any
line is invalid, unless `--publish-valid` is given. Exit status: 0 all published; 1 invalid input;
2 usage or connection error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import typer
from pydantic import ValidationError

from broker.errors import BrokerError
from broker.settings import Settings
from producers.sdk import AgencyClient
from schemas.codec import field_errors
from schemas.models import AGENCY_BODIES, NOTIFICATIONS, AgencyType, Record
from schemas.rules import notification_errors

__all__ = ["LineError", "register", "validate_lines"]

_KINDS = {m.__name__: m for m in NOTIFICATIONS}
_AGENCIES = {
    "police": AgencyType.POLICE,
    "health": AgencyType.HEALTH,
    "probation": AgencyType.PROBATION,
    "youth-justice": AgencyType.YOUTH_JUSTICE,
}


@dataclass(frozen=True)
class LineError:
    """One broken rule on one line."""

    line: int
    field: str
    rule: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.rule}"


def validate_lines(
    lines: list[str], agency: AgencyType, now: datetime
) -> tuple[list[tuple[int, Record]], list[LineError]]:
    """Parse and validate every line: (valid records with line numbers, errors). Blank lines are skipped."""
    valid: list[tuple[int, Record]] = []
    errors: list[LineError] = []
    allowed = ", ".join(t.__name__ for t in AGENCY_BODIES[agency])
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(LineError(n, "(line)", f"must be a JSON object ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict) or set(obj) != {"kind", "payload"}:
            errors.append(LineError(n, "(line)", 'must be an object with exactly "kind" and "payload"'))
            continue
        model = _KINDS.get(obj["kind"]) if isinstance(obj["kind"], str) else None
        if model is None or model not in AGENCY_BODIES[agency]:
            errors.append(LineError(n, "kind", f"must be one of {allowed} for agency {agency.value}"))
            continue
        try:
            record = model.model_validate(obj["payload"])
        except ValidationError as exc:
            errors.extend(LineError(n, f, r) for f, r in field_errors(exc))
            continue
        broken = notification_errors(record, agency, now)
        if broken:
            errors.extend(LineError(n, f, r) for f, r in broken)
            continue
        valid.append((n, record))
    return valid, errors


async def _publish(settings: Settings, agency: AgencyType, records: list[tuple[int, Record]], quiet: bool) -> int:
    total = len(records)
    done = 0
    async with AgencyClient(settings, agency) as client:
        pending = []
        for _, record in records:
            pending.append(await client.send(record))
            if len(pending) >= 500:
                for p in pending:
                    await p
                done += len(pending)
                pending.clear()
                if not quiet and total >= 1000:
                    print(f"published {done}/{total}", file=sys.stderr)
        for p in pending:
            await p
        done += len(pending)
    return done


def register(app: typer.Typer) -> None:
    """Add the `publish` command to the `mash` CLI."""

    @app.command()
    def publish(
        file: Path = typer.Argument(..., help="JSON Lines file; '-' reads standard input"),
        agency: str = typer.Option(..., "--agency", help="police | health | probation | youth-justice"),
        publish_valid: bool = typer.Option(False, "--publish-valid", help="publish the valid records anyway"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress lines"),
    ) -> None:
        """Validate every record of an agency's JSON Lines file, then publish them."""
        kind = _AGENCIES.get(agency)
        if kind is None:
            typer.echo(f"error: --agency must be one of {', '.join(_AGENCIES)}", err=True)
            raise typer.Exit(2)
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"error: cannot read {file}: {type(exc).__name__}", err=True)
            raise typer.Exit(2) from None
        valid, errors = validate_lines(text.splitlines(), kind, datetime.now(UTC))
        for e in errors:
            typer.echo(str(e), err=True)
        bad_lines = len({e.line for e in errors})
        if errors and not publish_valid:
            typer.echo(f"{bad_lines} invalid record(s); nothing published (--publish-valid to publish the rest)",
                       err=True)
            raise typer.Exit(1)
        try:
            sent = asyncio.run(_publish(Settings(), kind, valid, quiet))
        except BrokerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"published {sent} record(s) to the {agency} intake topic")
        if errors:
            typer.echo(f"{bad_lines} invalid record(s) not published", err=True)
            raise typer.Exit(1)
