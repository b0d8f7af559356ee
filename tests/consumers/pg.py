"""A throwaway PostgreSQL cluster on a loopback port (Debian's postgresql binaries), for tests."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["pg_bin", "throwaway_postgres"]


def pg_bin() -> str | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(versions[-1]) if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    """Run as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a cluster (trust auth on 127.0.0.1 only), yield its SQLAlchemy URL, stop and remove it."""
    binaries = pg_bin()
    assert binaries is not None
    root = tempfile.mkdtemp(prefix="mash-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    run = lambda *a: subprocess.run(_as_postgres(list(a)), check=True, capture_output=True)  # noqa: E731
    run(f"{binaries}/initdb", "-D", data, "-U", "mash", "--auth=trust", "-E", "UTF8", "--no-sync")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    run(f"{binaries}/pg_ctl", "-D", data, "-o", opts, "-w", "-l", os.path.join(root, "log"), "start")
    try:
        run(f"{binaries}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "mash", "mash")
        yield f"postgresql+psycopg://mash@127.0.0.1:{port}/mash"
    finally:
        run(f"{binaries}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
