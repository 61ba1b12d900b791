"""Entry script of mlform's Vertex AI custom jobs (runs inside the PyTorch training image).

Shipped in the job's bundle next to `mlform_job.json` and mlform's portable core,
`mlform.ml` (see packaging.py); never imported by mlform itself. It reads the dataset
from GCS, picks the features and splits off the held-out rows with `mlform.ml.split`
(the same rows as on any provider), trains with the built-in trainer or runs the job's
own script under the contract of docs/training-scripts.md, and writes to AIP_MODEL_DIR
(a gs:// prefix the service sets) the artifact, `metrics.json`, `holdout.csv` (for gates
judged later) and `run.json` (the seed). While it trains, `progress.json` beside the
model folder holds the last epoch, which the provider shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METRIC_LINE = "mlform-metric {name}={value}"


def storage_client():
    from google.cloud import storage

    return storage.Client(project=os.environ.get("CLOUD_ML_PROJECT_ID"))


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("gs://"):].partition("/")
    return bucket, key


def download(uri: str, to: Path) -> Path:
    bucket, key = split_uri(uri)
    path = to / key.rsplit("/", 1)[-1]
    storage_client().bucket(bucket).blob(key).download_to_filename(str(path))
    return path


def upload_dir(local: Path, uri: str) -> None:
    """Every file under `local` to the gs:// prefix `uri`."""
    bucket_name, prefix = split_uri(uri.rstrip("/") + "/")
    bucket = storage_client().bucket(bucket_name)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        bucket.blob(prefix + path.relative_to(local).as_posix()).upload_from_filename(str(path))


class Progress:
    """Writes the last epoch to `<run dir>/progress.json`, at most once every few seconds."""

    def __init__(self, model_uri: str):
        self.uri = model_uri.rstrip("/").rsplit("/", 1)[0] + "/progress.json"
        self.last = 0.0

    def __call__(self, epoch: int, epochs: int, loss: float) -> None:
        print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)
        if time.monotonic() - self.last < 5 and epoch < epochs:
            return
        self.last = time.monotonic()
        bucket, key = split_uri(self.uri)
        try:
            storage_client().bucket(bucket).blob(key).upload_from_string(
                json.dumps({"epoch": epoch, "epochs": epochs, "loss": loss}))
        except Exception as exc:  # progress is a courtesy: training goes on
            print(f"could not write progress: {exc}", flush=True)


def run_script(job: dict, train_rows, holdout, features: list[str],
               model_dir: Path, work: Path, device: str) -> dict:
    """The job's own script, under the same environment contract as on the local provider
    (docs/training-scripts.md: the rows as Parquet files, every column kept)."""
    train_path, test_path = work / "train.parquet", work / "holdout.parquet"
    hyper_path, metrics_path = work / "hyperparameters.json", work / "script_metrics.json"
    train_rows.to_parquet(train_path, index=False)
    holdout.to_parquet(test_path, index=False)
    hyper_path.write_text(json.dumps(job["hyperparameters"]))
    env = {**os.environ, "PYTHONPATH": str(HERE),
           "MLFORM_TRAIN_DATA": str(train_path), "MLFORM_TEST_DATA": str(test_path),
           "MLFORM_TARGET": job["target"], "MLFORM_FEATURES": json.dumps(features),
           "MLFORM_HYPERPARAMETERS": str(hyper_path), "MLFORM_MODEL_DIR": str(model_dir),
           "MLFORM_METRICS": str(metrics_path), "MLFORM_SEED": str(job["seed"]),
           "MLFORM_DEVICE": device}
    # Through mlform.ml.launch: the script may import the artifact module by the name
    # earlier releases documented, which the bundle (mlform.ml only) does not hold.
    code = subprocess.call([sys.executable, "-m", "mlform.ml.launch",
                            str(HERE / job["entrypoint"])], cwd=HERE, env=env)
    if code != 0:
        raise SystemExit(f"{job['entrypoint']} exited with status {code}")
    return json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}


def main() -> None:
    sys.path.insert(0, str(HERE))
    from mlform.ml.split import InputError

    try:
        train_job(json.loads((HERE / "mlform_job.json").read_text()))
    except InputError as e:  # the job's inputs do not fit its data: one line, no traceback
        raise SystemExit(f"error: {e}") from None


def train_job(job: dict) -> None:
    import pandas as pd
    import torch
    from mlform.ml import trainers
    from mlform.ml.artifact import load_predictor, save_model
    from mlform.ml.metrics import evaluate
    from mlform.ml.split import select_features, split, stratifies

    model_uri = os.environ.get("AIP_MODEL_DIR", "")
    if not model_uri.startswith("gs://"):
        raise SystemExit("AIP_MODEL_DIR is not set to a gs:// folder: run this script as a "
                         "Vertex AI custom job with base_output_directory set")
    work = Path(tempfile.mkdtemp(prefix="mlform-train-"))
    model_dir = work / "model"
    model_dir.mkdir()
    device = "cuda" if job.get("gpus") and torch.cuda.is_available() else "cpu"
    print(f"mlform training job '{job['resource']}' on {device}", flush=True)

    data = download(job["dataset"], work)
    frame = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_csv(data)
    features = select_features(frame, job["target"], job.get("features"),
                               job.get("exclude") or [])
    algorithm = job.get("algorithm")
    train_rows, holdout = split(frame, job["target"], float(job["test_size"]),
                                int(job["seed"]), stratifies(algorithm))
    holdout_path = model_dir / "holdout.csv"
    holdout.to_csv(holdout_path, index=False)

    if algorithm:
        network, meta = trainers.train(algorithm, job["hyperparameters"], train_rows,
                                       features, job["target"], int(job["seed"]), device,
                                       Progress(model_uri))
        save_model(model_dir, network, meta)
        metrics = {}
    else:
        metrics = run_script(job, train_rows, holdout, features, model_dir, work, device)
    metrics.update(evaluate(load_predictor(model_dir), holdout))
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (model_dir / "run.json").write_text(json.dumps({
        "seed": int(job["seed"]), "device": device,
        "device_note": "" if device == "cuda" or not job.get("gpus") else
        "asked for a GPU, but torch sees none in the container: trained on the CPU"}))
    for name, value in metrics.items():
        print(METRIC_LINE.format(name=name, value=value), flush=True)
    upload_dir(model_dir, model_uri)


if __name__ == "__main__":
    main()
