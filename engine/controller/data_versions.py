"""The version each `new_data` trigger's dataset has at its source now: the first 12
hex digits of the sha256 of the source file (relative to the stack), the version
every provider records for a dataset. A remote source is not read: its changes show
in `mlform plan`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlform.ml.datasets import content_version
from mlform.ml.retraining import DataVersion


def data_version(stack_dir: Path, inputs: Mapping[str, Any] | None,
                 outputs: Mapping[str, Any] | None) -> DataVersion:
    """`inputs` and `outputs` are the dataset's in state (None: not in state)."""
    source = (inputs or {}).get("source")
    recorded = (outputs or {}).get("version")
    if not isinstance(source, str) or recorded is None:
        return DataVersion("not_applied")
    if "://" in source:
        return DataVersion("remote", source, recorded)
    path = stack_dir / source
    if not path.is_file():
        return DataVersion("missing", source, recorded)
    return DataVersion("read", source, recorded, content_version(path))
