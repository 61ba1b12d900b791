"""Keeping the stack's `.mlform` private: the directory 0700, the files in it 0600.

Creating them with those modes is not enough: a directory made by an older
mlform, by `mkdir`, or unpacked from an archive keeps whatever mode it had. So
every command that opens the directory tightens it (and the state files) when
it finds them looser.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..diagnostics import MlformError

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_DIR_NAME = ".mlform"


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) if missing, and make it 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)


def tighten_stack_dir(stack_dir: Path) -> None:
    """Make an existing `<stack_dir>/.mlform` 0700; a missing one is left to be created."""
    path = Path(stack_dir) / PRIVATE_DIR_NAME
    if path.is_dir():
        tighten(path, DIR_MODE)


def tighten(path: Path, mode: int) -> None:
    """Remove any permission beyond `mode` from an existing `path` (never add any)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode == 0:
        return
    try:
        os.chmod(path, current & mode)
    except OSError as exc:
        raise MlformError.simple(
            f"'{path}' is readable by others (mode {current:o}) and cannot be made private: "
            f"{exc.strerror or exc}",
            help=f"it holds the state and its secrets' digests: run 'chmod {mode:o} {path}' "
                 "as its owner") from None
