"""One training run, as the entrypoint of a Ray job on the cluster:

    <python> -m mlform.providers.ray.job_train <run dir>

Reads `params.json` from the run directory on the shared storage, splits the data into
training and held-out rows (`mlform.ml.split`, the same rows as on every provider),
trains with the built-in trainer (`mlform.ml.trainers`) or the job's own script under
the contract of docs/training-scripts.md, evaluates the saved artifact on the held-out
rows and records the result in `status.json`. Progress is printed as
`epoch N/M loss X` lines, which the provider reads from the job's logs.

With `workers > 1` the built-in trainer runs under Ray Train's `TorchTrainer`: each
worker builds the same network from the same seed, trains on its share of the training
rows (every `workers`-th row) and DistributedDataParallel averages the gradients after
each batch; worker 0 saves the artifact.

Only the standard library and `mlform.ml` (with torch and pandas) are imported, plus
Ray for several workers: no provider code runs in the job but this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

SUCCEEDED, FAILED = "succeeded", "failed"
NO_GPU = "no GPU available to the Ray job: trained on CPU"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mlform.providers.ray.job_train <run dir>", file=sys.stderr)
        return 2
    from mlform.ml.split import InputError

    run_dir = Path(argv[0])
    try:
        device, note = run(run_dir, json.loads((run_dir / "params.json").read_text()))
    except InputError as e:
        print(f"error: {e}", flush=True)
        write_json(run_dir / "status.json", {"status": FAILED, "error": str(e),
                                             "input_error": True})
        return 1
    except Exception as e:  # every failure is recorded for the provider to report
        traceback.print_exc()
        write_json(run_dir / "status.json", {"status": FAILED, "error": str(e)})
        return 1
    write_json(run_dir / "status.json", {"status": SUCCEEDED, "device": device,
                                         "device_note": note})
    return 0


def write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1, default=str))
    os.replace(tmp, path)


def read_table(path: str, fmt: str):
    import pandas as pd

    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def choose_device(gpus: float, note: str) -> tuple[str, str]:
    """The device to train on, and why it is not the one asked for."""
    import torch

    if gpus <= 0:
        return "cpu", note
    if torch.cuda.is_available():
        return "cuda", ""
    return "cpu", note or NO_GPU


def run(run_dir: Path, params: dict[str, Any]) -> tuple[str, str]:
    """Train and evaluate; returns the device trained on and a note about it."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    from mlform.ml.artifact import load_predictor
    from mlform.ml.metrics import evaluate
    from mlform.ml.split import select_features, split, stratifies

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    workers = int(params.get("workers") or 1)
    device, note = choose_device(float(params.get("gpus") or 0), params.get("device_note", ""))
    where = f"{workers} Ray Train workers" if workers > 1 else "the job's entrypoint"
    print(f"run {params['run_id']} of job '{params['job']}': training on {device} in "
          f"{where}" + (f" ({note})" if note else ""), flush=True)

    frame = read_table(params["data"]["path"], params["data"]["format"])
    features = select_features(frame, params["target"], params.get("features"),
                               params.get("exclude") or [])
    algorithm = params.get("algorithm")
    train_rows, holdout = split(frame, params["target"], float(params["test_size"]),
                                int(params["seed"]), stratifies(algorithm))
    holdout.to_parquet(run_dir / "holdout.parquet", index=False)
    artifact = run_dir / "artifact"

    own_metrics: dict[str, Any] = {}
    if algorithm and workers > 1:
        train_distributed(run_dir, params, features, workers, device)
    elif algorithm:
        from mlform.ml import trainers
        from mlform.ml.artifact import save_model

        network, meta = trainers.train(algorithm, params["hyperparameters"], train_rows,
                                       features, params["target"], int(params["seed"]),
                                       device, _print_epoch)
        save_model(artifact, network, meta)
    else:
        own_metrics = run_script(run_dir, params, train_rows, features, device)

    metrics = {**own_metrics, **evaluate(load_predictor(artifact), holdout)}
    write_json(run_dir / "metrics.json", metrics)
    print("held-out metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                           if isinstance(v, int | float)), flush=True)
    return device, note


def _print_epoch(epoch: int, epochs: int, loss: float) -> None:
    print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)


def train_distributed(run_dir: Path, params: dict[str, Any], features: list[str],
                      workers: int, device: str) -> None:
    """The built-in trainer under Ray Train, `workers` workers with DDP."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ray.init(ignore_reinit_error=True, log_to_driver=True)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"run_dir": str(run_dir), "params": params, "features": features,
                           "device": device},
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=device == "cuda",
            resources_per_worker={"CPU": float(params.get("worker_cpus") or 1),
                                  **({"GPU": float(params["gpus"])} if device == "cuda"
                                     else {})}),
        run_config=RunConfig(name="ray-train", storage_path=str(run_dir)))
    trainer.fit()
    if not (run_dir / "artifact" / "model.json").is_file():
        raise RuntimeError("Ray Train finished without an artifact from worker 0")


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: the built-in trainer, on this worker's share of the rows."""
    import torch
    from mlform.ml import trainers
    from mlform.ml.artifact import save_model
    from mlform.ml.split import split, stratifies
    from ray import train
    from ray.train.torch import get_device, prepare_model

    torch.set_num_threads(1)
    params, run_dir = config["params"], Path(config["run_dir"])
    context = train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    frame = read_table(params["data"]["path"], params["data"]["format"])
    train_rows, _ = split(frame, params["target"], float(params["test_size"]),
                          int(params["seed"]), stratifies(params["algorithm"]))
    single_fit = trainers.fit

    def sharded_fit(network, x, y, loss_fn, chosen, seed, on_epoch=None):
        # Equal shares: DDP averages gradients once per batch, so every worker must run
        # the same number of batches.
        rows = (x.shape[0] // world) * world
        mine = torch.arange(rank, rows, world)
        here = get_device()
        single_fit(prepare_model(network), x[mine].to(here), y[mine].to(here), loss_fn,
                   chosen, seed, on_epoch if rank == 0 else None)

    # The trainer's own setup (encoding, classes, seeded initial weights) runs unchanged;
    # only its loop is the sharded, gradient-averaged one.
    trainers.fit = sharded_fit
    try:
        network, meta = trainers.train(params["algorithm"], params["hyperparameters"],
                                       train_rows, config["features"], params["target"],
                                       int(params["seed"]), config["device"], _print_epoch)
    finally:
        trainers.fit = single_fit
    if rank == 0:
        save_model(run_dir / "artifact", network, meta)


def run_script(run_dir: Path, params: dict[str, Any], train_rows, features: list[str],
               device: str) -> dict[str, Any]:
    """Run the job's own script (copied beside params.json) under the documented contract;
    returns the metrics it wrote."""
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
    script = run_dir / "code" / params["entrypoint"]
    print(f"running {params['entrypoint']}", flush=True)
    # Through mlform.ml.launch: scripts may import the artifact module by the name
    # earlier releases documented.
    code = subprocess.call([sys.executable, "-m", "mlform.ml.launch", str(script)],
                           cwd=script.parent, env=env)
    if code != 0:
        raise RuntimeError(f"{params['entrypoint']} exited with status {code}")
    if not (run_dir / "artifact" / "model.json").is_file():
        raise RuntimeError(f"{params['entrypoint']} wrote no model: save one with "
                           "mlform.ml.artifact.save_model(os.environ['MLFORM_MODEL_DIR'], "
                           "module, meta)")
    path = script_metrics
    return json.loads(path.read_text()) if path.is_file() else {}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
