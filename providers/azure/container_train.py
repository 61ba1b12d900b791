"""Entry script of mlform's Azure ML command jobs (runs in the curated PyTorch environment).

    python train.py --data ${{inputs.data}} --model ${{outputs.model}}

Shipped in the job's code folder next to `mlform_job.json` and mlform's portable core,
`mlform.ml` (see packaging.py); never imported by mlform itself. Azure ML mounts the
dataset and the output folder; the script picks the features and splits off the held-out
rows with `mlform.ml.split` (the same rows as on any provider), trains with the built-in
trainer or runs the job's own script under the contract of docs/training-scripts.md, and
writes to the output folder the artifact, `metrics.json`, `holdout.csv` (for gates judged
later) and `run.json` (the seed and device).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
METRIC_LINE = "mlform-metric {name}={value}"


def progress(epoch: int, epochs: int, loss: float) -> None:
    print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)


def run_script(job: dict, train_rows, holdout_path: Path, features: list[str],
               model_dir: Path, work: Path, device: str) -> dict:
    """The job's own script, under the same environment contract as on the local provider."""
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
    # earlier releases documented, which the folder (mlform.ml only) does not hold.
    code = subprocess.call([sys.executable, "-m", "mlform.ml.launch",
                            str(HERE / job["entrypoint"])], cwd=HERE, env=env)
    if code != 0:
        raise SystemExit(f"{job['entrypoint']} exited with status {code}")
    return json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}


def data_file(path: Path) -> Path:
    """A mounted uri_file is the file; a folder holds it."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".csv", ".parquet"))
        if not found:
            raise SystemExit(f"error: no csv or parquet file in {path}")
        return found[0]
    return path


def main() -> None:
    sys.path.insert(0, str(HERE))
    from mlform.ml.split import InputError

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    try:
        train_job(json.loads((HERE / "mlform_job.json").read_text()), Path(args.data),
                  Path(args.model))
    except InputError as e:  # the job's inputs do not fit its data: one line, no traceback
        raise SystemExit(f"error: {e}") from None


def train_job(job: dict, data: Path, model_dir: Path) -> None:
    import pandas as pd
    import torch
    from mlform.ml import trainers
    from mlform.ml.artifact import load_predictor, save_model
    from mlform.ml.metrics import evaluate
    from mlform.ml.split import select_features, split, stratifies

    work = Path(tempfile.mkdtemp(prefix="mlform-train-"))
    model_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if job.get("gpus") and torch.cuda.is_available() else "cpu"
    print(f"mlform training job '{job['resource']}' on {device}", flush=True)

    data = data_file(data)
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
                                       progress)
        save_model(model_dir, network, meta)
        metrics = {}
    else:
        metrics = run_script(job, train_rows, holdout_path, features, model_dir, work, device)
    metrics.update(evaluate(load_predictor(model_dir), holdout))
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (model_dir / "run.json").write_text(json.dumps({
        "seed": int(job["seed"]), "device": device,
        "device_note": "" if device == "cuda" or not job.get("gpus") else
        "asked for a GPU, but torch sees none in the environment: trained on the CPU"}))
    for name, value in metrics.items():
        print(METRIC_LINE.format(name=name, value=value), flush=True)


if __name__ == "__main__":
    main()
