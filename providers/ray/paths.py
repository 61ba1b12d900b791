"""Where the ray provider keeps everything on the cluster's shared storage, and the
`ray://` uris that name it (relative to the stack's folder there, so a uri means the
same on every node that mounts the storage).

    <storage>/<stack>/
      datasets/<name>/<version>/    data.<csv|parquet>, meta.json, profile.json
      runs/<job>/<run_id>/          params.json, artifact/, holdout.parquet, metrics.json,
                                    status.json (written by the job, see job_train.py)
      registry/<model>/<version>/   artifact/ (a copy), meta.json
      registry/<model>/aliases.json {"champion": 3}
      batch/<name>/<version>/       params.json, predictions.parquet, meta.json
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEME = "ray://"
KINDS = {"datasets": "datasets", "runs": "runs", "models": "registry", "batch": "batch"}


class RayPaths:
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

    def model_version(self, model: str, version: int | str) -> Path:
        return self.registry(model) / str(version)

    def batch_versions(self, name: str) -> Path:
        return self.root / "batch" / name

    def batch(self, name: str, version: str) -> Path:
        return self.batch_versions(name) / version

    def resolve(self, uri: str) -> Path:
        """The directory a `ray://kind/name/version` uri names."""
        if not uri.startswith(SCHEME):
            raise ValueError(f"'{uri}' is not a ray provider uri (ray://...)")
        kind, *parts = uri[len(SCHEME):].split("/")
        if kind not in KINDS or len(parts) != 2 or not all(parts) or \
                any(p in (".", "..") for p in parts):
            raise ValueError(f"'{uri}' names nothing the ray provider stores")
        return self.root / KINDS[kind] / parts[0] / parts[1]


def uri(kind: str, name: str, version: str | int) -> str:
    return f"{SCHEME}{kind}/{name}/{version}"


def read_json(path: Path) -> Any:
    """The JSON document at `path`, or None when there is none (or half of one)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Write atomically: readers on other nodes never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=1, default=str)
    os.replace(tmp, path)
