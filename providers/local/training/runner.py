"""One training run, as its own process:

    python -m mlform.providers.local.training.runner <run dir>

Reads `params.json` from the run directory, splits the data into training and
held-out rows (seeded, by `mlform.ml.split` as on every provider), trains (a
built-in trainer, or the job's entrypoint script under the contract of
docs/training-scripts.md), evaluates the saved artifact on the held-out rows and
records the result in `status.json`. Its stdout and stderr are the run's `train.log`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from mlform.ml.split import InputError, select_features, split, stratifies

from .runs import FAILED, SUCCEEDED, read_json, write_json

NO_GPU = "no GPU available: trained on CPU"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mlform.providers.local.training.runner <run dir>",
              file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    try:
        device, note = run(run_dir, json.loads((run_dir / "params.json").read_text()))
    except InputError as e:
        print(f"error: {e}", flush=True)
        finish(run_dir, {"status": FAILED, "error": str(e), "input_error": True})
        return 1
    except Exception as e:  # every failure is recorded for the handler to report
        traceback.print_exc()
        finish(run_dir, {"status": FAILED, "error": str(e)})
        return 1
    finish(run_dir, {"status": SUCCEEDED, "device": device, "device_note": note})
    return 0


def finish(run_dir: Path, result: dict[str, Any]) -> None:
    # Re-read: the handler wrote the pid and start time after this process began.
    status = read_json(run_dir / "status.json") or {}
    write_json(run_dir / "status.json", {**status, **result, "finished": _now()})


def run(run_dir: Path, params: dict[str, Any]) -> tuple[str, str]:
    """Train and evaluate; returns the device trained on and a note about it."""
    # Deterministic cuBLAS needs this before CUDA initialises.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    from mlform.ml import trainers
    from mlform.ml.artifact import load_predictor, save_model
    from mlform.ml.metrics import evaluate

    from ..dataset import read_table

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    device, note = choose_device(int(params.get("gpus") or 0))
    message = f"training on {device}" + (f" ({note})" if note else "")
    print(f"run {params['run_id']} of job '{params['job']}': {message}", flush=True)
    write_json(run_dir / "progress.json", {"message": message, "device": device})

    frame = read_table(Path(params["data"]["path"]), params["data"]["format"])
    features = select_features(frame, params["target"], params.get("features"),
                               params.get("exclude") or [])
    algorithm = params.get("algorithm")
    train_rows, holdout = split(frame, params["target"], float(params["test_size"]),
                                int(params["seed"]), stratifies(algorithm))
    holdout.to_parquet(run_dir / "holdout.parquet", index=False)
    artifact = run_dir / "artifact"

    if algorithm:
        def report(epoch: int, epochs: int, loss: float) -> None:
            print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)
            write_json(run_dir / "progress.json", {"epoch": epoch, "epochs": epochs,
                                                   "loss": loss, "device": device})

        network, meta = trainers.train(algorithm, params["hyperparameters"], train_rows,
                                       features, params["target"], int(params["seed"]),
                                       device, report)
        save_model(artifact, network, meta)
        own_metrics: dict[str, Any] = {}
    else:
        own_metrics = run_script(run_dir, params, train_rows, features, device)

    metrics = {**own_metrics, **evaluate(load_predictor(artifact), holdout)}
    write_json(run_dir / "metrics.json", metrics)
    print("held-out metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                           if isinstance(v, int | float)), flush=True)
    return device, note


def choose_device(gpus: int) -> tuple[str, str]:
    import torch

    if gpus <= 0:
        return "cpu", ""
    if torch.cuda.is_available():
        return "cuda", ""
    return "cpu", NO_GPU


def run_script(run_dir: Path, params: dict[str, Any], train_rows, features: list[str],
               device: str) -> dict[str, Any]:
    """Run the job's entrypoint under the documented contract; returns the metrics it wrote."""
    train_path = run_dir / "train.parquet"
    train_rows.to_parquet(train_path, index=False)
    hyper_path = run_dir / "hyperparameters.json"
    hyper_path.write_text(json.dumps(params["hyperparameters"], indent=1))
    script_metrics = run_dir / "script_metrics.json"
    env = {**os.environ,
           "MLFORM_TRAIN_DATA": str(train_path),
           "MLFORM_TEST_DATA": str(run_dir / "holdout.parquet"),
           "MLFORM_TARGET": params["target"],
           "MLFORM_FEATURES": json.dumps(features),
           "MLFORM_HYPERPARAMETERS": str(hyper_path),
           "MLFORM_MODEL_DIR": str(run_dir / "artifact"),
           "MLFORM_METRICS": str(script_metrics),
           "MLFORM_SEED": str(params["seed"]),
           "MLFORM_DEVICE": device}
    entrypoint = params["entrypoint"]
    print(f"running {entrypoint}", flush=True)
    code = subprocess.call([sys.executable, entrypoint], cwd=params["stack_dir"], env=env)
    if code != 0:
        raise RuntimeError(f"{Path(entrypoint).name} exited with status {code}; see train.log")
    if not (run_dir / "artifact" / "model.json").is_file():
        raise RuntimeError(f"{Path(entrypoint).name} wrote no model: save one with "
                           "mlform.ml.artifact.save_model(os.environ"
                           "['MLFORM_MODEL_DIR'], module, meta)")
    return read_json(script_metrics) or {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
