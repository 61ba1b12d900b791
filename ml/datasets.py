"""Dataset versions: the content digest every provider records as a dataset's `version`
(and the engine compares with the source on disk to see new data).

The version is the first 12 hex digits of the sha256 of the file's bytes, so the same
file has the same version on every provider and a changed byte is a new version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSION_LENGTH = 12


def content_version(path: Path) -> str:
    """The version of the file at `path`, read in blocks (datasets may be large)."""
    with open(path, "rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()[:VERSION_LENGTH]
