"""Entry script of mlform's SageMaker training jobs (runs inside the PyTorch container).

Shipped in the job's source bundle next to `mlform_job.json` and mlform's portable
core, `mlform.ml` (see packaging.py); never imported by mlform itself. It reads the
dataset from the `train` channel, picks the features and splits off the held-out
rows with `mlform.ml.split` (the same rows as on any provider), trains with the
built-in trainer or runs the job's own script under the contract of
docs/training-scripts.md, and leaves in the model directory the
artifact, `metrics.json` and `holdout.csv` (for gates evaluated later). Each
held-out metric is printed as `mlform-metric <name>=<value>`, which the job's
MetricDefinitions turn into its FinalMetricDataList.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
METRIC_LINE = "mlform-metric {name}={value}"


def read_table(channel: Path):
    import pandas as pd

    files = sorted(p for p in channel.rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"no data in the training channel {channel}")
    path = files[0]
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def run_script(job: dict, train_rows, holdout_path: Path, features: list[str],
               model_dir: Path, device: str) -> dict:
    """The job's own script, under the same environment contract as on the local provider."""
    work = Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    train_path, hyper_path = work / "train.csv", work / "hyperparameters.json"
    metrics_path = work / "script_metrics.json"
    train_rows.to_csv(train_path, index=False)
    hyper_path.write_text(json.dumps(job["hyperparameters"]))
    env = {**os.environ, "PYTHONPATH": str(HERE),
           "MLFORM_TRAIN_DATA": str(train_path), "MLFORM_TEST_DATA": str(holdout_path),
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
    import torch
    from mlform.ml import trainers
    from mlform.ml.artifact import load_predictor, save_model
    from mlform.ml.metrics import evaluate
    from mlform.ml.split import select_features, split, stratifies

    channel = Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    model_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if job.get("gpus") and torch.cuda.is_available() else "cpu"
    print(f"mlform training job '{job['resource']}' on {device}", flush=True)

    frame = read_table(channel)
    features = select_features(frame, job["target"], job.get("features"),
                               job.get("exclude") or [])
    algorithm = job.get("algorithm")
    train_rows, holdout = split(frame, job["target"], float(job["test_size"]),
                                int(job["seed"]), stratifies(algorithm))
    holdout_path = model_dir / "holdout.csv"
    holdout.to_csv(holdout_path, index=False)

    if algorithm:
        def report(epoch: int, epochs: int, loss: float) -> None:
            print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)

        network, meta = trainers.train(algorithm, job["hyperparameters"], train_rows,
                                       features, job["target"], int(job["seed"]), device,
                                       report)
        save_model(model_dir, network, meta)
        metrics = {}
    else:
        metrics = run_script(job, train_rows, holdout_path, features, model_dir, device)
    metrics.update(evaluate(load_predictor(model_dir), holdout))
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    for name, value in metrics.items():
        print(METRIC_LINE.format(name=name, value=value), flush=True)


if __name__ == "__main__":
    main()
