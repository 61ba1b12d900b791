"""Where the provider keeps everything on the shared filesystem, and the uris naming it.

    <storage>/<stack>/
      datasets/<name>/<version>/   data.<csv|parquet>, meta.json
      runs/<job>/<run_id>/         job.json, job.sh, submitted.json, slurm-<id>.log,
                                   progress.json, outcome.json, started.log,
                                   artifact/, holdout.parquet, metrics.json, params.json
      registry/<model>/<version>/  artifact/ (a copy), meta.json
      registry/<model>/aliases.json
      batch/<name>/<version>/      job.json, job.sh, submitted.json, slurm-<id>.log,
                                   outcome.json, predictions.parquet

Uris are `file://` uris of these paths: the place is the name, on every node and on
the machine running mlform alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

OUTCOME = "outcome.json"
SUBMITTED = "submitted.json"
LOG_NAME = "slurm-%j.log"
"""Each job's stdout and stderr, %j being its Slurm job id."""


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def dataset_versions(self, name: str) -> Path:
        return self.root / "datasets" / name

    def dataset(self, name: str, version: str) -> Path:
        return self.dataset_versions(name) / version

    def runs(self, job: str) -> Path:
        return self.root / "runs" / job

    def run(self, job: str, run_id: str) -> Path:
        return self.runs(job) / run_id

    def registry(self, model: str) -> Path:
        return self.root / "registry" / model

    def model_version(self, model: str, version: int) -> Path:
        return self.registry(model) / str(version)

    def batch_versions(self, name: str) -> Path:
        return self.root / "batch" / name

    def batch(self, name: str, version: str) -> Path:
        return self.batch_versions(name) / version


def uri(path: Path) -> str:
    return Path(path).resolve().as_uri()


def path_of(value: str) -> Path:
    """The path a `file://` uri (or a plain absolute path) names; ValueError otherwise."""
    if value.startswith("file://"):
        return Path(unquote(urlparse(value).path))
    if value.startswith("/"):
        return Path(value)
    raise ValueError(f"'{value}' is not on the shared filesystem: the slurm provider "
                     "reads file:// uris of its own datasets, runs and models")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically (a reader on any node sees the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1, default=str))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
