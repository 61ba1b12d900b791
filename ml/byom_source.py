"""A model's `source:` made into a run, the same on every provider: where the file is,
the digest naming what would be registered, and the imported artifact with its
metrics on every row of the dataset (nothing is held out: mlform did not train it).

Each provider lays the result out where its registry reads runs (local:
`.mlform/local/imported/...`; aws: a `model.tar.gz` in S3) and judges the gates on
those rows as it does a trained model's held-out rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .byom import file_digest, format_of, import_model

SETTINGS = ("dataset", "target", "features", "task", "classes")
"""The `source:` fields besides the file that change what would be registered."""


def source_path(stack_dir: Path, source: Mapping[str, Any]) -> Path:
    """The model file a `source:` names (relative paths from the stack directory).
    Raises ValueError when it is remote or missing: mlform reads it on this machine."""
    given = str(source["path"])
    if "://" in given and not given.startswith("file://"):
        raise ValueError(f"source path '{given}': mlform reads model files on this "
                         "machine; give a path relative to the stack directory")
    path = Path(given.removeprefix("file://"))
    path = path if path.is_absolute() else stack_dir / path
    if not path.is_file():
        raise ValueError(f"model file '{given}' not found (looked at {path})")
    return path


def file_version(stack_dir: Path, source: Mapping[str, Any]) -> str:
    """The content version of the file `source` names (what a plan shows changing)."""
    return file_digest(source_path(stack_dir, source))


def run_digest(stack_dir: Path, source: Mapping[str, Any]) -> str:
    """12 hex digits over the file's content and every setting that changes what would
    be registered: a new file or new data is a new run, the same ones the run made
    before. Reads only the file."""
    path = source_path(stack_dir, source)
    settings = {"file": file_digest(path), "format": format_of(path, source.get("format")),
                **{k: source.get(k) for k in SETTINGS}}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()
                          ).hexdigest()[:12]


def import_run(stack_dir: Path, source: Mapping[str, Any], frame, directory: Path
               ) -> dict[str, Any]:
    """Write the artifact of `source` into `directory` (`mlform.ml.byom`) and return its
    metrics on every row of `frame`. Raises ValueError saying what is wrong with the
    file or the settings, in one line (a file its runtime cannot read or run too)."""
    from .metrics import evaluate

    path = source_path(stack_dir, source)
    fmt = format_of(path, source.get("format"))
    try:
        predictor = import_model(path, fmt, frame, str(source["target"]),
                                 source.get("features"), source.get("task"),
                                 source.get("classes"), directory)
        return evaluate(predictor, frame)
    except ValueError:
        raise
    except Exception as e:  # a file the runtime cannot read or run: say so in one line
        raise ValueError(f"model file '{source['path']}' cannot be loaded as {fmt}: "
                         f"{type(e).__name__}: {e}") from e


def run_params(run_id: str, dataset: str, dataset_version: str, stack_dir: Path,
               source: Mapping[str, Any]) -> dict[str, Any]:
    """The run's `params.json`: no job, seed 0, the data and the file it came from."""
    path = source_path(stack_dir, source)
    return {"job": None, "run_id": run_id, "seed": 0,
            "data": {"uri": dataset, "version": dataset_version},
            "source": {"path": str(source["path"]),
                       "format": format_of(path, source.get("format")),
                       "version": file_digest(path)}}
