"""Diagnostics: what went wrong in a user's input, where, and how to fix it.

The engine never prints. It returns or raises diagnostics; the CLI renders them
in the rustc style (`error: ...`, `--> file:line:col`, the source line with the
span marked, `help: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A place in a user's file; line and column are 1-based."""

    file: str
    line: int
    column: int
    length: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    summary: str
    location: Location | None = None
    detail: str = ""
    help: str = ""
    address: str = ""
    severity: str = "error"
    show_source: bool = True
    """False where the source line may hold a sensitive value: only file:line:col is shown."""

    def render(self, source_cache: dict[str, list[str]] | None = None) -> str:
        lines = [f"{self.severity}: {self.summary}"]
        if self.location:
            loc = self.location
            lines.append(f"  --> {loc}")
            source = _source_line(loc.file, loc.line, source_cache) if self.show_source \
                else None
            if source is not None:
                gutter = str(loc.line)
                pad = " " * len(gutter)
                lines.append(f"{pad} |")
                lines.append(f"{gutter} | {source}")
                lines.append(f"{pad} | {' ' * (loc.column - 1)}{'^' * max(1, loc.length)}")
        if self.address:
            lines.append(f"  = resource: {self.address}")
        if self.detail:
            lines.extend(f"  = {d}" for d in self.detail.splitlines())
        if self.help:
            lines.append(f"help: {self.help}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        out: dict = {"severity": self.severity, "summary": self.summary}
        if self.location:
            loc = self.location
            out["location"] = {"file": loc.file, "line": loc.line, "column": loc.column}
        for key in ("detail", "help", "address"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _source_line(file: str, line: int, cache: dict[str, list[str]] | None) -> str | None:
    cache = cache if cache is not None else {}
    if file not in cache:
        try:
            cache[file] = Path(file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            cache[file] = []
    src = cache[file]
    if 1 <= line <= len(src):
        return src[line - 1].rstrip()
    return None


class MlformError(Exception):
    """The one error type that reaches the user: carries one or more diagnostics."""

    def __init__(self, *diagnostics: Diagnostic):
        if not diagnostics:
            raise ValueError("MlformError needs at least one diagnostic")
        # The same problem met through several resources is reported once.
        self.diagnostics: list[Diagnostic] = list(dict.fromkeys(diagnostics))
        super().__init__(diagnostics[0].summary)

    @classmethod
    def simple(cls, summary: str, help: str = "", location: Location | None = None,
               detail: str = "", address: str = "") -> MlformError:
        return cls(Diagnostic(summary, location=location, help=help, detail=detail,
                              address=address))

    def render(self) -> str:
        cache: dict[str, list[str]] = {}
        return "\n\n".join(d.render(cache) for d in self.diagnostics)


@dataclass
class DiagnosticBag:
    """Collects several diagnostics so that they can be reported together."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def error(self, summary: str, location: Location | None = None, help: str = "",
              detail: str = "", address: str = "") -> None:
        self.add(Diagnostic(summary, location=location, help=help, detail=detail,
                            address=address))

    def raise_if_any(self) -> None:
        if self.items:
            raise MlformError(*self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def did_you_mean(word: str, choices) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else ""
