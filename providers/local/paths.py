"""Where the local provider keeps everything, and the `local://` uris that name it.

    .mlform/local/
      datasets/<name>/<version>/   data.<csv|parquet>, profile.json, meta.json
      features/<name>/<version>/   offline.parquet, online.sqlite, meta.json
      runs/<job>/<run_id>/         artifact/, metrics.json, params.json, train.log, status.json
      registry/<model>/<version>/  artifact/, card.json, card.md, meta.json
      registry/<model>/aliases.json
      imported/<model>/<digest>/   artifact/, holdout.parquet, params.json, metrics.json
                                   (a model file brought in by `source:`, as a run)
      endpoints/<name>/            server.json, server.log, requests.jsonl, feedback.jsonl
      monitors/<name>/             evaluations/<time>.json, report.html
      batch/<name>/<version>/      predictions.parquet, meta.json
      batch/<name>/runs.jsonl
      policies/<name>/             actions.jsonl
"""

from __future__ import annotations

from pathlib import Path

SCHEME = "local://"


class LocalPaths:
    def __init__(self, root: Path):
        self.root = Path(root)

    def dataset_versions(self, name: str) -> Path:
        """The folder of every stored version of dataset `name`."""
        return self.root / "datasets" / name

    def dataset(self, name: str, version: str) -> Path:
        return self.dataset_versions(name) / version

    def feature_versions(self, name: str) -> Path:
        return self.root / "features" / name

    def features(self, name: str, version: str) -> Path:
        return self.feature_versions(name) / version

    def run(self, job: str, run_id: str) -> Path:
        return self.root / "runs" / job / run_id

    def model_version(self, model: str, version: int | str) -> Path:
        return self.root / "registry" / model / str(version)

    def registry(self, model: str) -> Path:
        return self.root / "registry" / model

    def imported(self, model: str, digest: str) -> Path:
        """A model file brought in by a model's `source:`, laid out as a training run."""
        return self.root / "imported" / model / digest

    def endpoints(self) -> Path:
        return self.root / "endpoints"

    def endpoint(self, name: str) -> Path:
        return self.endpoints() / name

    def monitor(self, name: str) -> Path:
        return self.root / "monitors" / name

    def batch_versions(self, name: str) -> Path:
        """A batch job's outputs, one folder per version, and its runs log."""
        return self.root / "batch" / name

    def batch(self, name: str, version: str) -> Path:
        return self.batch_versions(name) / version

    def policy(self, name: str) -> Path:
        return self.root / "policies" / name

    def resolve(self, uri: str) -> Path:
        """The directory a `local://kind/...` uri names."""
        if not uri.startswith(SCHEME):
            raise ValueError(f"not a local provider uri: '{uri}'")
        kind, _, rest = uri[len(SCHEME):].partition("/")
        parts = rest.split("/")
        if kind == "datasets":
            return self.dataset(*parts[:2])
        if kind == "features":
            return self.features(*parts[:2])
        if kind == "runs":
            return self.run(*parts[:2])
        if kind == "models":
            return self.model_version(*parts[:2])
        if kind == "batch":
            return self.batch(*parts[:2])
        if kind == "imported":
            return self.imported(*parts[:2])
        raise ValueError(f"unknown kind '{kind}' in uri '{uri}'")


def dataset_uri(name: str, version: str) -> str:
    return f"{SCHEME}datasets/{name}/{version}"


def features_uri(name: str, version: str) -> str:
    return f"{SCHEME}features/{name}/{version}"


def run_uri(job: str, run_id: str) -> str:
    return f"{SCHEME}runs/{job}/{run_id}"


def model_uri(model: str, version: int) -> str:
    return f"{SCHEME}models/{model}/{version}"


def batch_uri(name: str, version: str) -> str:
    return f"{SCHEME}batch/{name}/{version}"


def imported_uri(model: str, digest: str) -> str:
    return f"{SCHEME}imported/{model}/{digest}"
