"""A model's `source:` on SageMaker: the model file and every row of its dataset uploaded
as a training run's artifact, which the gate evaluation job, the registry and the
endpoints read as they read a trained one (`mlform.ml.artifact.load_predictor`).

    s3://<bucket>/<prefix>/<stack>/imported/<model>/<digest>/model.tar.gz
        model.json and the file as given (`mlform.ml.byom`), holdout.csv (every row of
        the dataset: the gates are judged on all of it), metrics.json, params.json

The digest (`mlform.ml.byom_source.run_digest`) covers the file's content and the
settings: a new file or new data is a new artifact, so a new version; the same ones
again find the artifact uploaded before.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from mlform.engine.provider import Progress
from mlform.ml.byom import format_of
from mlform.ml.byom_source import import_run, run_digest, run_params, source_path

from . import packaging
from .handler import Handler, describe_or_none
from .layout import split_uri


def artifact_key(h: Handler, model: str, source: dict[str, Any]) -> str:
    """The bucket key of the artifact `source` uploads as (reads only the file)."""
    return h.layout.imported_key(model, run_digest(h.ctx.stack_dir, source))


def materialise(h: Handler, model: str, source: dict[str, Any], tags: dict[str, str],
                progress: Progress) -> str:
    """The `s3://` uri of the artifact of `source`, uploaded now unless it is there.
    Raises ValueError saying what is wrong with the file, the dataset or the settings."""
    key = artifact_key(h, model, source)
    uri = h.layout.uri(key)
    if describe_or_none(h.clients.s3.head_object, Bucket=h.cfg.bucket, Key=key) is not None:
        return uri
    dataset = str(source["dataset"])
    path = source_path(h.ctx.stack_dir, source)
    progress(f"importing {path.name} ({format_of(path, source.get('format'))}) "
             f"with the rows of {dataset}")
    frame, version = _read_dataset(h, dataset)
    with tempfile.TemporaryDirectory(prefix="mlform-import-") as tmp:
        directory = Path(tmp)
        metrics = import_run(h.ctx.stack_dir, source, frame, directory)
        frame.to_csv(directory / "holdout.csv", index=False)
        (directory / "metrics.json").write_text(json.dumps(metrics, indent=1))
        params = run_params(f"imported-{key.split('/')[-2]}", dataset, version,
                            h.ctx.stack_dir, source)
        (directory / "params.json").write_text(json.dumps(params, indent=1))
        files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
    progress(f"uploading the imported artifact to {uri}")
    packaging.upload_once(h.clients.s3, h.cfg.bucket, key, packaging.tarball(files), tags)
    return uri


def _read_dataset(h: Handler, dataset: str):
    """The rows of a dataset's `s3://` uri, and its version (the folder holding it)."""
    import pandas as pd

    try:
        bucket, key = split_uri(dataset)
    except ValueError:
        raise ValueError(f"source dataset '{dataset}' is not a dataset on S3; set "
                         "'dataset: ${<dataset>.uri}' of a dataset on this provider") from None
    body = describe_or_none(h.clients.s3.get_object, Bucket=bucket, Key=key)
    if body is None:
        raise ValueError(f"source dataset '{dataset}' is not in S3 (was it destroyed?)")
    data = io.BytesIO(body["Body"].read())
    frame = pd.read_parquet(data) if key.endswith(".parquet") else pd.read_csv(data)
    return frame, key.rsplit("/", 2)[-2] if key.count("/") >= 2 else key
