"""The `deadline` command (broker._cli_deadline), driven through a typer app built for the test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from broker._cli_deadline import register

SCHOOLS = Path(__file__).resolve().parent / "fixtures" / "deadline_schools.json"
OFFSET_ERROR = "error: --at must carry a UTC offset, e.g. 2026-03-27T18:00:00+00:00\n"


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root so `deadline` is a sub-command, as in the real `mash` CLI."""

    register(app, now=lambda: datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
    return app


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(make_app(), ["deadline", *args])
    return result.exit_code, result.stdout, result.stderr


def test_encompass_prints_london_time_with_offset() -> None:
    """Friday evening before Easter holiday in Shropshire prints the first day back with the BST offset."""
    code, out, err = run("encompass", "--at", "2026-03-27T18:00:00+00:00", "--authority", "E06000051")
    assert (code, out, err) == (0, "2026-04-13T09:00:00+01:00\n", "")


def test_frontdoor_across_spring_forward_prints_bst() -> None:
    """Front door deadline across the clock change prints same wall time, new offset."""
    code, out, _ = run("frontdoor", "--at", "2026-03-27T18:00:00Z", "--authority", "E06000059")
    assert (code, out) == (0, "2026-03-30T18:00:00+01:00\n")


def test_frontdoor_red() -> None:
    """--rag RED gives four working hours."""
    code, out, _ = run(
        "frontdoor", "--at", "2026-03-09T16:00:00+00:00", "--authority", "E10000013", "--rag", "RED"
    )
    assert (code, out) == (0, "2026-03-10T12:00:00+00:00\n")


def test_dvtriage_exactly_at_cutoff() -> None:
    """Received at exactly the 09:00 cut-off goes to the next day's meeting."""
    code, out, _ = run("dvtriage", "--at", "2026-03-10T09:00:00+00:00", "--authority", "E06000051")
    assert (code, out) == (0, "2026-03-11T09:30:00+00:00\n")


def test_school_supplies_start_time_and_authority() -> None:
    """--school looks up the school's start time (08:45) and its authority's calendar."""
    code, out, err = run(
        "encompass", "--at", "2026-02-13T18:00:00+00:00", "--school", "900001", "--schools-file", str(SCHOOLS)
    )
    assert (code, out, err) == (0, "2026-02-23T08:45:00+00:00\n", "")


def test_unverified_calendar_warns_on_stderr() -> None:
    """Past calendar coverage: the deadline is printed, plus a one-line warning naming authority and date."""
    code, out, err = run("encompass", "--at", "2026-08-31T20:00:00+01:00", "--authority", "E06000051")
    assert code == 0
    assert out == "2026-09-01T09:00:00+01:00\n"
    assert err == "warning: calendar unverified for E06000051 on 2026-09-01: fell back to working days\n"


def test_missing_offset_is_a_one_line_error_exit_2() -> None:
    """An --at without an offset fails with exit 2 and the offset message, nothing on stdout."""
    assert run("encompass", "--at", "2026-03-27T18:00:00", "--authority", "E06000051") == (
        2,
        "",
        OFFSET_ERROR,
    )


def test_date_only_at_is_missing_offset() -> None:
    """A bare date has no offset either."""
    assert run("dvtriage", "--at", "2026-03-27", "--authority", "E06000051") == (2, "", OFFSET_ERROR)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("frontdoor", "--at", "yesterday", "--authority", "E06000051"),
            "error: --at must be an ISO-8601 instant with a UTC offset, e.g. 2026-03-27T18:00:00+00:00\n",
        ),
        (
            ("frontdoor", "--at", "2026-03-27T18:00:00Z", "--authority", "E09000033"),
            "error: authority E09000033 is not configured\n",
        ),
        (
            ("frontdoor", "--at", "2026-03-27T18:00:00Z", "--authority", "X123"),
            "error: authority code must be an ONS code: E or W followed by 8 digits\n",
        ),
        (
            (
                "encompass",
                "--at",
                "2026-03-27T18:00:00Z",
                "--school",
                "999999",
                "--schools-file",
                str(SCHOOLS),
            ),
            f"error: unknown school URN 999999 in {SCHOOLS}\n",
        ),
        (
            ("frontdoor", "--at", "2026-03-27T18:00:00Z", "--authority", "E06000051", "--rag", "PURPLE"),
            "error: --rag must be RED, AMBER or GREEN\n",
        ),
        (
            ("dvtriage", "--at", "2026-03-27T18:00:00Z", "--authority", "E06000051", "--rag", "RED"),
            "error: --rag applies to frontdoor deadlines only\n",
        ),
        (
            ("dvtriage", "--at", "2026-03-27T18:00:00Z"),
            "error: --authority (an ONS code such as E06000051) or --school is required\n",
        ),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_2(args: tuple[str, ...], message: str) -> None:
    """Bad instant, unknown or malformed authority, unknown school, bad RAG: one stderr line, exit 2."""
    assert run(*args) == (2, "", message)


def test_school_authority_conflict_is_an_error() -> None:
    """--authority that contradicts the school's own authority is refused."""
    code, out, err = run(
        "encompass",
        "--at",
        "2026-03-27T18:00:00Z",
        "--school",
        "900001",
        "--schools-file",
        str(SCHOOLS),
        "--authority",
        "E06000059",
    )
    assert (code, out) == (2, "")
    assert err.startswith("error: school 900001 belongs to authority E06000051") and err.count("\n") == 1


def test_closed_school_warns() -> None:
    """A school recorded as closed still gets a deadline, with a warning."""
    code, out, err = run(
        "encompass", "--at", "2026-03-09T18:00:00Z", "--school", "900003", "--schools-file", str(SCHOOLS)
    )
    assert (code, out) == (0, "2026-03-10T09:00:00+00:00\n")
    assert err == "warning: school 900003 is recorded as closed\n"


def test_missing_at_uses_injected_now() -> None:
    """Without --at the command uses the injected clock (Mon 9 Mar 2026 12:00 UTC -> Tue 09:30 meeting)."""
    assert run("dvtriage", "--authority", "E06000051") == (0, "2026-03-10T09:30:00+00:00\n", "")


def test_missing_schools_file_is_an_error(tmp_path: Path) -> None:
    """A --schools-file that does not exist is a one-line error, exit 2."""
    missing = tmp_path / "none.json"
    code, out, err = run(
        "encompass", "--at", "2026-03-09T18:00:00Z", "--school", "900001", "--schools-file", str(missing)
    )
    assert (code, out, err) == (2, "", f"error: schools file not found: {missing}\n")
