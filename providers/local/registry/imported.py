"""A model's `source:` on the local provider: a model file made elsewhere and the dataset
it is judged on, laid out as a training run so the registry registers, gates, serves
and monitors it as it does a trained one.

    imported/<model>/<digest>/   artifact/ (the file and model.json, `mlform.ml.byom`),
                                 holdout.parquet (every row of the dataset),
                                 params.json, metrics.json

The digest covers the file's content and every setting that changes what would be
registered (format, dataset uri, target, features, task, classes): a new file or new
data is a new "run", so a new version, and the same ones again find the run made before
(`mlform.ml.byom_source`, shared with the other providers).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml.byom import format_of
from mlform.ml.byom_source import file_version, import_run, run_digest, run_params, source_path

from ..paths import SCHEME, LocalPaths, imported_uri

__all__ = ["artifact_uri", "file_version", "materialise"]


def artifact_uri(stack_dir: Path, model: str, source: dict[str, Any]) -> str:
    """The `local://imported/...` uri this source registers as (reads only the file)."""
    return imported_uri(model, run_digest(stack_dir, source))


def materialise(paths: LocalPaths, stack_dir: Path, model: str, source: dict[str, Any],
                progress: Progress) -> str:
    """The run directory of `source` (made now unless it exists); returns its uri.
    Raises ValueError saying what is wrong with the file, the dataset or the settings."""
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
        metrics = import_run(stack_dir, source, frame, staging / "artifact")
        frame.to_parquet(staging / "holdout.parquet")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=1))
        params = run_params(f"imported-{uri.rsplit('/', 1)[-1]}", dataset,
                            dataset.rsplit("/", 1)[-1], stack_dir, source)
        (staging / "params.json").write_text(json.dumps(params, indent=1))
        try:
            staging.rename(run_dir)
        except OSError:  # made meanwhile by another apply: the same content
            if not (run_dir / "params.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return uri
