"""Summarise a py-spy raw (collapsed stacks) profile of the worker: where the samples went, by library, and the
top frames of our code (broker/, schemas/) by self time, by inclusive time, and as the deepest own frame (our
function that the time below it, in libraries, is charged to).

    .venv/bin/python -m benchmarks.profile <py-spy raw output>
"""

from __future__ import annotations

import collections
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "summarise"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")
_OURS = ("broker/", "schemas/", "producers/", "mash/")
_CATEGORIES = (  # (name, substrings of the file path), first match wins
    ("our code (broker/, schemas/)", _OURS),
    ("pydantic", ("pydantic",)),
    ("fastavro", ("fastavro",)),
    ("structlog / logging", ("structlog", "logging/")),
    ("faust / mode", ("faust/", "mode/")),
    ("aiokafka", ("aiokafka",)),
    ("rocksdict", ("rocksdict",)),
    ("json", ("json/",)),
    ("selectors (waiting in epoll/poll: a thread py-spy counts as active)", ("selectors.py",)),
    ("asyncio", ("asyncio/",)),
)


_ENTRY = {  # in (nearly) every stack: the process's entry, not where time goes
    "<module> (mash/cli.py)", "main (mash/cli.py)", "worker (broker/cli.py)", "run_worker (broker/app.py)"}
_OUTSIDE = "run_worker (broker/app.py)"


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m["func"], m["file"]


def _ours(file: str) -> str | None:
    for root in _OURS:
        i = file.rfind(root)
        if i >= 0 and "site-packages" not in file:
            return file[i:]
    return None


def _category(file: str) -> str:
    if _ours(file):
        return _CATEGORIES[0][0]
    for name, parts in _CATEGORIES[1:]:
        if any(p in file for p in parts):
            return name
    return "other (stdlib, uuid, hashing, ...)"


@dataclass(frozen=True)
class Profile:
    """Sample counts of a profile."""

    samples: int
    categories: list[tuple[str, int]]
    self_ours: list[tuple[str, int]]
    inclusive_ours: list[tuple[str, int]]
    deepest_ours: list[tuple[str, int]]

    def pct(self, n: int) -> str:
        """A share of all samples."""
        return f"{100 * n / self.samples:.1f}%" if self.samples else "-"

    def lines(self, top: int = 12) -> list[str]:
        """The summary as printable lines."""
        out = [f"profile: {self.samples:,} samples of the worker (py-spy, active threads only; time in compiled"
               " code (fastavro, pydantic-core, rocksdict) counts as its calling Python frame's self time)",
               "  self time by where the leaf frame is:"]
        out += [f"    {self.pct(n):>6}  {name}" for name, n in self.categories]
        for title, rows in (("our frames by self time", self.self_ours),
                            ("our frames by inclusive time", self.inclusive_ours),
                            ("deepest own frame (self + the library time below it)", self.deepest_ours)):
            out.append(f"  {title}:")
            out += [f"    {self.pct(n):>6}  {name}" + ("  = faust, aiokafka, asyncio outside our agents"
                                                    if name == _OUTSIDE else "") for name, n in rows[:top]]
        return out


def summarise(path: Path) -> Profile:
    """Read a py-spy `-f raw` file (one `frame;frame;... count` line per distinct stack, root first)."""
    total = 0
    categories: collections.Counter[str] = collections.Counter()
    self_ours: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    deepest: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_parse(f) for f in stack.split(";")]
        func, file = frames[-1]
        categories[_category(file)] += n
        own = [(f"{fn} ({o})", o) for fn, fl in frames if (o := _ours(fl))]
        if _ours(file):
            self_ours[f"{func} ({_ours(file)})"] += n
        for name in dict.fromkeys(name for name, _ in own):
            if name not in _ENTRY:
                inclusive[name] += n
        if own:
            deepest[own[-1][0]] += n
    return Profile(total, categories.most_common(), self_ours.most_common(), inclusive.most_common(),
                   deepest.most_common())


def main() -> None:
    """Print the summary of a profile file."""
    for line in summarise(Path(sys.argv[1])).lines():
        print(line)


if __name__ == "__main__":
    main()
