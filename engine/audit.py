"""The audit log: an append-only, hash-chained record of every command that changed state.

Each line of `.mlform/audit.jsonl` is one JSON entry that carries `prev`, the
sha256 of the exact bytes of the line before it (without its newline), and
`digest`, the sha256 of its own canonical JSON without `digest`. An edited,
removed or reordered entry therefore breaks the chain. Cutting entries off the
end leaves a valid chain, so `.mlform/audit.head` records the last seq and
digest as well. `verify` reports every break it finds.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from filelock import FileLock, Timeout

from .diagnostics import MlformError
from .state.local_backend import fsync_dir, write_atomically
from .state.private import tighten_stack_dir
from .state.statefile import json_default
from .values import to_storable

LOCK_TIMEOUT_SECONDS = 30.0


class AuditLog:
    def __init__(self, stack_dir: Path, salt: str | None = None):
        """`salt` keys the digest of any sensitive value that reaches the log; callers
        redact before appending, so by default a random one only hides such a value."""
        self.dir = Path(stack_dir) / ".mlform"
        tighten_stack_dir(Path(stack_dir))  # `audit log|verify` open it without a session
        self.path = self.dir / "audit.jsonl"
        self.head_path = self.dir / "audit.head"
        self._mutex = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS,
                               mode=0o600)
        self._salt = salt or secrets.token_hex(8)

    def append(self, command: str, result: str, changes: list[dict], plan_digest: str | None,
               user: str | None = None, detail: dict | None = None) -> dict:
        """Record one command; durable (fsynced) when this returns."""
        for change in changes:
            if "resource" not in change or "action" not in change:
                raise ValueError(f"an audit change needs 'resource' and 'action': {change!r}")
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            with self._mutex:
                return self._append_locked({
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds")
                            .replace("+00:00", "Z"),
                    "user": user or _current_user(),
                    "host": socket.gethostname(),
                    "command": command,
                    "plan_digest": plan_digest,
                    "changes": to_storable(changes, self._salt),
                    "result": result,
                    "detail": to_storable(detail or {}, self._salt),
                })
        except Timeout:
            raise MlformError.simple(
                f"the audit log '{self.path}' stayed locked for {LOCK_TIMEOUT_SECONDS:.0f}s",
                help="another mlform command is writing it; run this one again") from None

    def entries(self) -> list[dict]:
        """All complete entries, oldest first; a line cut short by a crash is left out."""
        found = []
        for number, line in enumerate(_complete_lines(_read(self.path)), 1):
            entry = _parse(line)
            if entry is None:
                raise MlformError.simple(
                    f"audit log line {self.path}:{number} is not a JSON object",
                    help="run 'mlform audit verify' to see what else was changed")
            found.append(entry)
        return found

    def verify(self) -> list[str]:
        """Every break in the chain, one sentence each; empty when the log is intact."""
        data = _read(self.path)
        lines = _complete_lines(data)
        problems = []
        previous_line: bytes | None = None
        previous_seq: int | None = 0
        seen: dict[int, str | None] = {}  # seq -> the digest its entry records
        for number, line in enumerate(lines, 1):
            entry = _parse(line)
            if entry is None:
                problems.append(f"line {number}: not a JSON object")
                previous_line, previous_seq = line, None
                continue
            seq = entry.get("seq")
            label = f"line {number} (seq {seq})"
            if entry.get("digest") != _digest(entry):
                problems.append(f"{label}: edited: its content does not match its digest")
            expected_prev = _sha256(previous_line) if previous_line is not None else ""
            if entry.get("prev") != expected_prev:
                problems.append(f"{label}: does not follow the line before it: an entry was "
                                f"removed, reordered or edited")
            if previous_seq is not None and seq != previous_seq + 1:
                problems.append(f"{label}: follows seq {previous_seq}: an entry was removed "
                                f"or reordered")
            previous_line = line
            previous_seq = seq if _is_int(seq) else None
            if _is_int(seq):
                seen[seq] = entry.get("digest")
        if data and not data.endswith(b"\n"):
            problems.append(f"line {len(lines) + 1}: cut short: an append was interrupted")
        problems.extend(self._head_problems(seen, lines))
        return problems

    def _append_locked(self, fields: dict[str, Any]) -> dict:
        lines = _complete_lines(_read(self.path))
        last = _parse(lines[-1]) if lines else None
        last_seq = last["seq"] if last and _is_int(last.get("seq")) else 0
        head = self._read_head()
        # The head counts too: after entries were cut off the end, the next seq leaves a gap
        # that verify keeps reporting instead of hiding the cut.
        head_seq = head["seq"] if head else 0
        entry = {"seq": max(last_seq, head_seq) + 1, **fields,
                 "prev": _sha256(lines[-1]) if lines else ""}
        entry["digest"] = _digest(entry)
        line = _canonical(entry)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "ab") as f:
            # An interrupted append never finished an entry: drop its fragment.
            f.truncate(sum(len(x) + 1 for x in lines))
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.dir)
        write_atomically(self.head_path, _canonical({"seq": entry["seq"],
                                                     "digest": entry["digest"]}) + b"\n")
        return entry

    def _head_problems(self, seen: dict[int, str | None], lines: list[bytes]) -> list[str]:
        head = self._read_head()
        if head is None:
            if self.head_path.exists():
                return [f"'{self.head_path}' is damaged: the end of the log cannot be checked"]
            return [f"'{self.head_path}' is missing: the end of the log cannot be checked"
                    ] if lines else []
        last_seq = max(seen, default=0)
        if head["seq"] > last_seq:
            return [f"the log ends at seq {last_seq} but '{self.head_path.name}' records seq "
                    f"{head['seq']}: entries were removed from the end"]
        if seen.get(head["seq"]) != head["digest"]:
            return [f"seq {head['seq']} is not the entry '{self.head_path.name}' records: "
                    f"it was replaced"]
        return []

    def _read_head(self) -> dict | None:
        head = _parse(_read(self.head_path))
        if head is None or not _is_int(head.get("seq")) or not isinstance(head.get("digest"),
                                                                           str):
            return None
        return head


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=json_default).encode("utf-8")


def _digest(entry: dict) -> str:
    return _sha256(_canonical({k: v for k, v in entry.items() if k != "digest"}))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _complete_lines(data: bytes) -> list[bytes]:
    """The lines that end in a newline; what follows the last newline was never finished."""
    return data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]


def _parse(line: bytes) -> dict | None:
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
