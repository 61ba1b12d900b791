"""A model's `source:` on the local provider: a model file made elsewhere and the dataset
it is judged on, laid out as a training run so the registry registers, gates, serves
and monitors it as it does a trained one.

    imported/<model>/<digest>/   artifact/ (the file and model.json, `mlform.ml.byom`),
                                 holdout.parquet (every row of the dataset),
                                 params.json, metrics.json

The digest covers the file's content and every setting that changes what would be
registered (format, dataset uri, target, features, task, classes): a new file or new
data is a new "run", so a new version, and the same ones again find the run made before.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml.byom import file_digest, format_of, import_model

from ..paths import SCHEME, LocalPaths, imported_uri


def source_path(stack_dir: Path, source: dict[str, Any]) -> Path:
    """The model file a `source:` names (relative paths from the stack directory)."""
    given = str(source["path"])
    if "://" in given and not given.startswith("file://"):
        raise ValueError(f"source path '{given}': the local provider reads model files on "
                         "this machine; give a path relative to the stack directory")
    path = Path(given.removeprefix("file://"))
    path = path if path.is_absolute() else stack_dir / path
    if not path.is_file():
        raise ValueError(f"model file '{given}' not found (looked at {path})")
    return path


def file_version(stack_dir: Path, source: dict[str, Any]) -> str:
    return file_digest(source_path(stack_dir, source))


def artifact_uri(stack_dir: Path, model: str, source: dict[str, Any]) -> str:
    """The `local://imported/...` uri this source registers as (reads only the file)."""
    path = source_path(stack_dir, source)
    fmt = format_of(path, source.get("format"))
    settings = {"file": file_digest(path), "format": fmt,
                **{k: source.get(k) for k in ("dataset", "target", "features", "task",
                                              "classes")}}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    return imported_uri(model, digest.hexdigest()[:12])


def materialise(paths: LocalPaths, stack_dir: Path, model: str, source: dict[str, Any],
                progress: Progress) -> str:
    """The run directory of `source` (made now unless it exists); returns its uri.
    Raises ValueError saying what is wrong with the file, the dataset or the settings."""
    from mlform.ml.metrics import evaluate

    from ..dataset import load_dataset

    uri = artifact_uri(stack_dir, model, source)
    run_dir = paths.resolve(uri)
    if (run_dir / "params.json").is_file():
        return uri
    dataset = str(source["dataset"])
    if not dataset.startswith(f"{SCHEME}datasets/"):
        raise ValueError(f"source dataset '{dataset}' is not a local dataset; set "
                         "'dataset: ${<dataset>.uri}' of a dataset on this provider")
    path = source_path(stack_dir, source)
    fmt = format_of(path, source.get("format"))
    progress(f"importing {path.name} ({fmt}) and evaluating it on {dataset}")
    try:
        frame = load_dataset(paths, dataset)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from e
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=".incoming-"))
    try:
        try:
            predictor = import_model(path, fmt, frame, str(source["target"]),
                                     source.get("features"), source.get("task"),
                                     source.get("classes"), staging / "artifact")
            metrics = evaluate(predictor, frame)
        except ValueError:
            raise
        except Exception as e:  # a file the runtime cannot read or run: say so in one line
            raise ValueError(f"model file '{source['path']}' cannot be loaded as {fmt}: "
                             f"{type(e).__name__}: {e}") from e
        frame.to_parquet(staging / "holdout.parquet")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=1))
        params = {"job": None, "run_id": f"imported-{uri.rsplit('/', 1)[-1]}", "seed": 0,
                  "data": {"uri": dataset, "version": dataset.rsplit("/", 1)[-1]},
                  "source": {"path": str(source["path"]), "format": fmt,
                             "version": file_digest(path)}}
        (staging / "params.json").write_text(json.dumps(params, indent=1))
        try:
            staging.rename(run_dir)
        except OSError:  # made meanwhile by another apply: the same content
            if not (run_dir / "params.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return uri
