"""What a Slurm job runs on its node:

    <python> -m mlform.providers.slurm.runtime <job dir>

Reads `job.json` from the job directory (on the shared filesystem) and trains or
scores with mlform's portable core, as every provider does: `mlform.ml.split` holds out
the same rows, `mlform.ml.trainers` trains, `mlform.ml.metrics` measures, or the job's
own script runs under the contract of docs/training-scripts.md. It ends by writing
`outcome.json` atomically, the record the provider reads once Slurm has forgotten the
job: {status: succeeded | failed, job_id, node, exit_code, error, metrics, device,
device_note, rows, finished}. Imports no engine code and no other provider.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from mlform.providers.slurm.storage import OUTCOME, read_json, write_json

NO_GPU = "no GPU available: trained on CPU"
"""The local provider's words for the same fact: the note reads alike everywhere."""
PREDICTION_COLUMN = "prediction"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mlform.providers.slurm.runtime <job dir>", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    job = json.loads((directory / "job.json").read_text())
    me = {"job_id": os.environ.get("SLURM_JOB_ID", ""), "node": socket.gethostname()}
    with open(directory / "started.log", "a") as log:  # one line per job that ran here
        log.write(json.dumps({**me, "time": _now()}) + "\n")
    try:
        result = train(directory, job) if job["kind"] == "train" else score(directory, job)
    except Exception as e:  # every failure is recorded for the provider to report
        from mlform.ml.split import InputError

        if not isinstance(e, InputError):
            traceback.print_exc()
        print(f"error: {e}", flush=True)
        write_json(directory / OUTCOME, {**me, "status": "failed", "exit_code": 1,
                                         "error": str(e), "input_error":
                                         isinstance(e, InputError), "finished": _now()})
        return 1
    write_json(directory / OUTCOME, {**me, "status": "succeeded", "exit_code": 0,
                                     **result, "finished": _now()})
    return 0


def read_table(path: Path, fmt: str):
    import pandas as pd

    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def choose_device(gpus: int) -> tuple[str, str]:
    """cuda when a GPU was asked for and torch sees one; otherwise cpu, with a note
    saying what Slurm allocated when a GPU was asked for and none is usable."""
    import torch

    if gpus <= 0:
        return "cpu", ""
    if torch.cuda.is_available():
        return "cuda", ""
    allocated = os.environ.get("SLURM_GPUS_ON_NODE") or os.environ.get("SLURM_JOB_GPUS")
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if allocated:
        return "cpu", (f"{NO_GPU} (Slurm allocated {allocated} GPU(s), CUDA_VISIBLE_DEVICES="
                       f"{seen}, but torch sees no CUDA device on {socket.gethostname()})")
    return "cpu", f"{NO_GPU} (Slurm allocated no GPU to the job)"


def train(directory: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate as on every provider; returns the outcome's fields."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    from mlform.ml import trainers
    from mlform.ml.artifact import load_predictor, save_model
    from mlform.ml.metrics import evaluate
    from mlform.ml.split import select_features, split, stratifies

    torch.use_deterministic_algorithms(True)
    device, note = choose_device(int(job.get("gpus") or 0))
    message = f"training on {device} ({socket.gethostname()})" + (f": {note}" if note else "")
    print(f"run {job['run_id']} of job '{job['job']}': {message}", flush=True)
    write_json(directory / "progress.json", {"message": message})
    write_json(directory / "params.json", job)  # the run's inputs, beside its artifact

    frame = read_table(Path(job["data"]["path"]), job["data"]["format"])
    features = select_features(frame, job["target"], job.get("features"),
                               job.get("exclude") or [])
    algorithm = job.get("algorithm")
    train_rows, holdout = split(frame, job["target"], float(job["test_size"]),
                                int(job["seed"]), stratifies(algorithm))
    holdout.to_parquet(directory / "holdout.parquet", index=False)
    artifact = directory / "artifact"

    if algorithm:
        def report(epoch: int, epochs: int, loss: float) -> None:
            print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)
            write_json(directory / "progress.json", {"epoch": epoch, "epochs": epochs,
                                                     "loss": loss, "device": device})

        network, meta = trainers.train(algorithm, job["hyperparameters"], train_rows,
                                       features, job["target"], int(job["seed"]), device,
                                       report)
        save_model(artifact, network, meta)
        own: dict[str, Any] = {}
    else:
        own = run_script(directory, job, train_rows, features, device)
    metrics = {**own, **evaluate(load_predictor(artifact), holdout)}
    write_json(directory / "metrics.json", metrics)
    print("held-out metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                           if isinstance(v, int | float)), flush=True)
    return {"metrics": metrics, "device": device, "device_note": note}


def run_script(directory: Path, job: dict[str, Any], train_rows, features: list[str],
               device: str) -> dict[str, Any]:
    """The job's own script (copied beside the run), under the documented contract."""
    train_path, hyper_path = directory / "train.parquet", directory / "hyperparameters.json"
    metrics_path = directory / "script_metrics.json"
    train_rows.to_parquet(train_path, index=False)
    hyper_path.write_text(json.dumps(job["hyperparameters"], indent=1))
    env = {**os.environ,
           "MLFORM_TRAIN_DATA": str(train_path),
           "MLFORM_TEST_DATA": str(directory / "holdout.parquet"),
           "MLFORM_TARGET": job["target"], "MLFORM_FEATURES": json.dumps(features),
           "MLFORM_HYPERPARAMETERS": str(hyper_path),
           "MLFORM_MODEL_DIR": str(directory / "artifact"),
           "MLFORM_METRICS": str(metrics_path), "MLFORM_SEED": str(job["seed"]),
           "MLFORM_DEVICE": device}
    script = directory / job["entrypoint"]
    print(f"running {job['entrypoint']}", flush=True)
    code = subprocess.call([sys.executable, "-m", "mlform.ml.launch", str(script)],
                           cwd=directory, env=env)
    if code != 0:
        raise RuntimeError(f"{job['entrypoint']} exited with status {code}; see the job's log")
    if not (directory / "artifact" / "model.json").is_file():
        raise RuntimeError(f"{job['entrypoint']} wrote no model: save one with "
                           "mlform.ml.artifact.save_model(os.environ['MLFORM_MODEL_DIR'], "
                           "module, meta)")
    return read_json(metrics_path) or {}


def score(directory: Path, job: dict[str, Any]) -> dict[str, Any]:
    """Predictions for every row of the input, `chunk_rows` at a time, into one Parquet
    file (every input column and `prediction`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlform.ml.artifact import load_predictor

    predictor = load_predictor(job["model_dir"])
    out, tmp = directory / "predictions.parquet", directory / ".predictions.parquet.tmp"
    writer, rows = None, 0
    try:
        for chunk in _chunks(Path(job["data"]["path"]), job["data"]["format"],
                             int(job["chunk_rows"])):
            chunk[PREDICTION_COLUMN] = predictor.predict(chunk)
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))
            rows += len(chunk)
            write_json(directory / "progress.json", {"message": f"{rows} rows scored"})
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(pa.table({PREDICTION_COLUMN: pa.array([], pa.null())}), tmp)
    os.replace(tmp, out)
    return {"rows": rows}


def _chunks(data: Path, fmt: str, chunk_rows: int):
    if fmt == "csv":
        import pandas as pd

        with pd.read_csv(data, chunksize=chunk_rows) as reader:
            yield from reader
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(data).iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
