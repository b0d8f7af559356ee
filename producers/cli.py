"""`mash publish`: validate a JSON Lines file for an agency, then publish it.

Each line is `{"kind": "<record name>", "payload": {...}}`. Every record is validated first, strictly (no
coercion: `"present": "yes"` is not a boolean; instants, dates, ids and enum symbols are JSON strings); each
invalid one is reported by line number, field path and rule, never a value nor an unexpected key's name (an
unexpected key is named by its parent's path and its position). Nothing is published when any line is invalid,
unless `--publish-valid` is given. Exit status: 0 all published; 1 invalid input (or no notification at all);
2 usage or connection error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from producers.sdk import AgencyClient, KafkaTarget
from schemas.codec import field_errors
from schemas.errors import BrokerError
from schemas.models import AGENCY_BODIES, NOTIFICATIONS, AgencyType, Record
from schemas.rules import notification_errors

__all__ = ["AGENCIES", "LineError", "read_lines", "register", "validate_lines"]

_KINDS = {m.__name__: m for m in NOTIFICATIONS}
#: `--agency` values (youth_justice is accepted too: it is the file name `mash simulate --out` writes).
AGENCIES = {
    "police": AgencyType.POLICE,
    "health": AgencyType.HEALTH,
    "probation": AgencyType.PROBATION,
    "youth-justice": AgencyType.YOUTH_JUSTICE,
    "youth_justice": AgencyType.YOUTH_JUSTICE,
}
_SHAPE = 'must be an object with exactly "kind" and "payload"'
Errors = list[tuple[str, str]]


@dataclass(frozen=True)
class LineError:
    """One broken rule on one line."""

    line: int
    field: str
    rule: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.rule}"


def read_lines(data: bytes) -> list[bytes]:
    """The file's lines, split on LF only (a JSON string may hold U+2028), each without its CR LF ending."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _refuse_constant(name: str) -> None:
    raise ValueError("NaN and Infinity are not JSON")


def _parse(text: str) -> tuple[Any, Errors]:
    """The parsed JSON of a line, or a whole-line error naming what is wrong with it (never the text)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant), []
    except json.JSONDecodeError as exc:
        return None, [("(line)", f"must be a JSON object ({exc.msg} at column {exc.colno})")]
    except RecursionError:
        return None, [("(line)", "must be a JSON object (nested too deeply)")]
    except ValueError as exc:
        rule = "a number has too many digits" if "digits" in str(exc) else "NaN and Infinity are not JSON"
        return None, [("(line)", f"must be a JSON object ({rule})")]


def _validate(obj: Any, agency: AgencyType, now: datetime) -> Record | Errors:
    """The record of a parsed line, or its (field path, rule) errors."""
    if not isinstance(obj, dict) or set(obj) != {"kind", "payload"}:
        return [("(line)", _SHAPE)]
    model = _KINDS.get(obj["kind"]) if isinstance(obj["kind"], str) else None
    if model is None or model not in AGENCY_BODIES[agency]:
        allowed = ", ".join(t.__name__ for t in AGENCY_BODIES[agency])
        return [("kind", f"must be one of {allowed} for agency {agency.value}")]
    payload = obj["payload"]
    if not isinstance(payload, dict):
        return [("payload", "must be a JSON object")]
    try:
        record = model.model_validate_json(json.dumps(payload), strict=True)
    except ValidationError as exc:
        return field_errors(exc, payload)
    return notification_errors(record, agency, now) or record


def validate_line(raw: str | bytes, agency: AgencyType, now: datetime) -> Record | Errors | None:
    """One line: its record, its errors, or None when blank. Never raises on any input."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return [("(line)", f"must be UTF-8 (invalid byte at column {exc.start + 1})")]
    if not text.strip():
        return None
    try:
        obj, errors = _parse(text)
        return errors or _validate(obj, agency, now)
    except RecursionError:
        return [("(line)", "must be a JSON object (nested too deeply)")]
    except Exception as exc:  # any other failure is still this line's error, never a traceback
        return [("(line)", f"could not be validated ({type(exc).__name__})")]


def validate_lines(
    lines: Sequence[str | bytes], agency: AgencyType, now: datetime
) -> tuple[list[tuple[int, Record]], list[LineError]]:
    """Parse and validate every line: (valid records with line numbers, errors). Blank lines are skipped."""
    valid: list[tuple[int, Record]] = []
    errors: list[LineError] = []
    for n, raw in enumerate(lines, start=1):
        result = validate_line(raw, agency, now)
        if isinstance(result, list):
            errors.extend(LineError(n, f, r) for f, r in result)
        elif result is not None:
            valid.append((n, result))
    return valid, errors


async def _publish(settings: KafkaTarget, agency: AgencyType, records: list[tuple[int, Record]],
                   quiet: bool) -> int:
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


def _read(file: Path) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None


def _report(errors: list[LineError]) -> int:
    for e in errors:
        typer.echo(str(e), err=True)
    return len({e.line for e in errors})


def register(app: typer.Typer, settings: Callable[[], KafkaTarget]) -> None:
    """Add the `publish` command to a CLI; `settings()` gives where to publish (read at run time)."""

    @app.command()
    def publish(
        file: Path = typer.Argument(..., help="JSON Lines file; '-' reads standard input"),
        agency: str = typer.Option(..., "--agency", help="police | health | probation | youth-justice"),
        publish_valid: bool = typer.Option(False, "--publish-valid", help="publish the valid records anyway"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress lines"),
    ) -> None:
        """Validate every record of an agency's JSON Lines file, then publish them."""
        kind = AGENCIES.get(agency)
        if kind is None:
            typer.echo(f"error: --agency must be one of {', '.join(AGENCIES)}", err=True)
            raise typer.Exit(2)
        valid, errors = validate_lines(read_lines(_read(file)), kind, datetime.now(UTC))
        bad_lines = _report(errors)
        if not valid and not errors:
            typer.echo(f"error: no notifications in {file}", err=True)
            raise typer.Exit(1)
        if errors and not publish_valid:
            typer.echo(f"{bad_lines} invalid record(s); nothing published (--publish-valid to publish the rest)",
                       err=True)
            raise typer.Exit(1)
        try:
            sent = asyncio.run(_publish(settings(), kind, valid, quiet))
        except BrokerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"published {sent} record(s) to the {agency} intake topic")
        if errors:
            typer.echo(f"{bad_lines} invalid record(s) not published", err=True)
            raise typer.Exit(1)
