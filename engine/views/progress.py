"""Apply progress: a live table on a terminal, plain lines otherwise.

Both implement the engine's `Hooks`; neither is known to the engine.
"""

from __future__ import annotations

import sys
import threading
import time

from ..hooks import Hooks

PAST = {"create": "created", "update": "updated", "delete": "destroyed", "replace": "replaced",
        "delete-then-create": "replaced", "create-then-delete": "replaced", "no-op": "unchanged",
        "move": "moved"}
ING = {"create": "creating", "update": "updating", "delete": "destroying",
       "delete-then-create": "replacing", "create-then-delete": "replacing", "move": "moving"}


class LineHooks(Hooks):
    """One line per event, for logs and CI."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._last_progress: dict[str, float] = {}

    def _say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def started(self, name, action):
        self._say(f"{name}: {ING.get(action, action)}...")

    def progress(self, name, message, fraction):
        now = time.monotonic()
        if now - self._last_progress.get(name, 0) < 1.0 and fraction not in (None, 1.0):
            return
        self._last_progress[name] = now
        pct = f" [{fraction:.0%}]" if fraction is not None else ""
        self._say(f"{name}: {message}{pct}")

    def finished(self, name, action, ok, detail, seconds):
        if ok:
            self._say(f"{name}: {PAST.get(action, action)} after {seconds:.1f}s")
        else:
            self._say(f"{name}: failed after {seconds:.1f}s: {detail}")

    def skipped(self, name, reason):
        self._say(f"{name}: skipped ({reason})")

    def interrupted(self, message):
        self._say(message)

    def event(self, message):
        self._say(message)


class LiveHooks(Hooks):
    """A table that redraws: each resource's status, elapsed time and last message."""

    def __init__(self, console):
        from rich.live import Live

        self.console = console
        self.rows: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.live = Live(self._table(), console=console, refresh_per_second=4, transient=False,
                         get_renderable=self._table)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def _table(self):
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("resource")
        table.add_column("status")
        table.add_column("elapsed", justify="right")
        table.add_column("detail", overflow="fold")
        with self._lock:
            rows = list(self.rows.items())
        for name, row in rows:
            end = row.get("end") or time.monotonic()
            elapsed = f"{end - row['start']:.1f}s" if row.get("start") else ""
            table.add_row(name, row["status"], elapsed, row.get("detail", ""))
        return table

    def started(self, name, action):
        with self._lock:
            self.rows[name] = {"status": f"[yellow]{ING.get(action, action)}[/]",
                               "start": time.monotonic()}

    def progress(self, name, message, fraction):
        pct = f"{fraction:.0%} " if fraction is not None else ""
        with self._lock:
            if name in self.rows:
                self.rows[name]["detail"] = pct + message.replace("[", "\\[")

    def finished(self, name, action, ok, detail, seconds):
        with self._lock:
            row = self.rows.setdefault(name, {"start": time.monotonic() - seconds})
            row["end"] = time.monotonic()
            row["status"] = f"[green]{PAST.get(action, action)}[/]" if ok else "[red]failed[/]"
            row["detail"] = "" if ok else detail.replace("[", "\\[")

    def skipped(self, name, reason):
        with self._lock:
            self.rows[name] = {"status": "[dim]skipped[/]", "detail": reason}

    def interrupted(self, message):
        self.console.print(f"[bold yellow]{message}[/]")

    def event(self, message):
        self.console.print(message)
