"""Training on the local provider against the same training written by hand, side by
side in the same run.

    .venv/bin/python bench/training.py [--rows 50000] [--features 20] [--epochs 5]
        [--repeat 3] [--skip-loop]

Two comparisons, each interleaved (mlform, then the baseline, `--repeat` times; the
best of each is kept, which filters out other load on the machine):

1. **The whole apply.** `mlform apply --auto-approve` of a stack holding the data set
   (applied before the clock starts) and an `mlp_classifier` training job, as a fresh
   process: start-up, refresh and plan, the run's own process (imports, split,
   held-out rows, training, the artifact, held-out metrics), polling, state. Against
   `python <script>`, a hand-written script doing the same training and saving
   (imports included): it reads the same Parquet file, holds out the same share of
   rows, standardises, trains the same network with the same loop and saves its
   weights with `torch.save`. Target: at most 2x.
2. **The training loop alone** (in this process, no start-up): the built-in trainer
   against the same network and loop written directly in PyTorch. Target: within 5%.

Both train single-threaded (as a run does) with the same seed, batch size and
optimiser. Prints wall times and ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MLFORM = Path(sys.executable).with_name("mlform")
HIDDEN, LR, BATCH, TEST_SIZE = [64, 32], 1e-3, 256, 0.2
HYPER = {"hidden_layers": HIDDEN, "lr": LR, "batch_size": BATCH}

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(1)
    frame = pd.read_parquet(sys.argv[1])
    epochs = int(sys.argv[2])
    rows = np.random.default_rng(0).permutation(len(frame))
    train = frame.iloc[rows[int(len(frame) * {test_size}):]]
    values = train.drop(columns="label").to_numpy()
    mean, std = values.mean(0), values.std(0)
    x = torch.from_numpy(((values - mean) / std).astype(np.float32))
    y = torch.from_numpy(train["label"].to_numpy().copy())
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimiser = torch.optim.Adam(net.parameters(), lr={lr})
    loss_fn = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        for i in range(0, len(x), {batch}):
            batch = order[i:i + {batch}]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(net(x[batch]), y[batch]).backward()
            optimiser.step()
        print(f"epoch {{epoch + 1}}/{{epochs}}", flush=True)
    torch.save({{"state": net.state_dict(), "mean": mean, "std": std}}, sys.argv[3])
""").format(lr=LR, batch=BATCH, test_size=TEST_SIZE)

DATASET = """\
version: 1
stack: bench
backend: {type: local}
providers:
  local: {}
resources:
  data:
    type: dataset
    source: data.parquet
"""

JOB = """\
  train:
    type: training_job
    dataset: ${{data.uri}}
    algorithm: mlp_classifier
    target: label
    test_size: {test_size}
    hyperparameters: {{hidden_layers: {hidden}, lr: {lr}, batch_size: {batch}, epochs: {epochs}}}
"""


def synthetic(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float64)
    logits = x @ rng.normal(size=features)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = (logits + rng.normal(size=rows) > 0).astype(int)
    return frame


def mlform_apply(data: Path, epochs: int) -> tuple[float, float]:
    """Wall and CPU time of `mlform apply` of the training job in a fresh stack."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp)
        (stack / "data.parquet").symlink_to(data)
        (stack / "mlform.yaml").write_text(DATASET)
        _mlform(stack)  # the data set, before the clock starts
        (stack / "mlform.yaml").write_text(DATASET + JOB.format(
            test_size=TEST_SIZE, hidden=HIDDEN, lr=LR, batch=BATCH, epochs=epochs))
        start, cpu = time.perf_counter(), _children_cpu()
        _mlform(stack)
        return time.perf_counter() - start, _children_cpu() - cpu


def _mlform(stack: Path) -> None:
    proc = subprocess.run([str(MLFORM), "apply", "--auto-approve", "--no-color"], cwd=stack,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mlform apply failed:\n{proc.stdout}{proc.stderr}")


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (and theirs, once waited for): less
    disturbed than wall time by other load on the machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def script_run(data: Path, epochs: int) -> tuple[float, float]:
    """Wall and CPU time of the hand-written script as a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train.py"
        script.write_text(SCRIPT)
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run([sys.executable, str(script), str(data), str(epochs),
                        str(Path(tmp) / "model.pt")], check=True, capture_output=True)
        return time.perf_counter() - start, _children_cpu() - cpu


def builtin_loop(frame: pd.DataFrame, epochs: int) -> float:
    from mlform.ml import trainers

    features = [c for c in frame.columns if c != "label"]
    start = time.perf_counter()
    trainers.train("mlp_classifier", {**HYPER, "epochs": epochs}, frame, features, "label", 0)
    return time.perf_counter() - start


def handwritten_loop(frame: pd.DataFrame, epochs: int) -> float:
    import torch

    start = time.perf_counter()
    values = frame.drop(columns="label").to_numpy()
    x = torch.from_numpy(((values - values.mean(0)) / values.std(0)).astype(np.float32))
    y = torch.from_numpy(frame["label"].to_numpy().copy())
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimiser = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        for i in range(0, len(x), BATCH):
            batch = order[i:i + BATCH]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(net(x[batch]), y[batch]).backward()
            optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many")
    parser.add_argument("--skip-loop", action="store_true",
                        help="only the whole apply against the script")
    args = parser.parse_args()
    frame = synthetic(args.rows, args.features)
    print(f"data: {args.rows} rows x {args.features} features, {args.epochs} epochs, "
          f"batch {BATCH}, hidden {HIDDEN}, 1 thread, best of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.parquet"
        frame.to_parquet(data, index=False)
        applies, scripts = [], []
        for _ in range(args.repeat):
            applies.append(mlform_apply(data, args.epochs))
            scripts.append(script_run(data, args.epochs))
    for name, index in (("wall", 0), ("CPU", 1)):
        ours, theirs = min(t[index] for t in applies), min(t[index] for t in scripts)
        print(f"{name} time, best of {args.repeat}:")
        print(f"  whole `mlform apply` of the job : {ours:8.3f} s  "
              f"({', '.join(f'{t[index]:.2f}' for t in applies)})")
        print(f"  hand-written script, imports in : {theirs:8.3f} s  "
              f"({', '.join(f'{t[index]:.2f}' for t in scripts)})")
        print(f"  ratio (target <= 2)             : {ours / theirs:8.3f}", flush=True)
    if args.skip_loop:
        return
    import torch

    torch.set_num_threads(1)
    ours, direct = [], []
    for _ in range(args.repeat):
        ours.append(builtin_loop(frame, args.epochs))
        direct.append(handwritten_loop(frame, args.epochs))
    print(f"built-in mlp_classifier loop    : {min(ours):8.3f} s")
    print(f"hand-written torch loop         : {min(direct):8.3f} s")
    print(f"ratio (target <= 1.05)          : {min(ours) / min(direct):8.3f}")


if __name__ == "__main__":
    main()
