"""The built-in `mlp_classifier` trainer against the same network and loop written
directly in PyTorch, on the same data, side by side.

    .venv/bin/python bench/training.py [--rows 50000] [--features 20] [--epochs 5]

Both train single-threaded (as a run does) with the same seed, batch size and
optimiser; the built-in time includes fitting and applying its preprocessing.
Prints wall times and the ratio; the target overhead is below 5%. With
`--full-run`, also times a whole `training_job` apply (process start, split,
held-out rows, artifact export, metrics).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mlform.providers.local.training import trainers

HYPER = {"hidden_layers": [64, 32], "lr": 1e-3, "batch_size": 256}


def synthetic(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float64)
    logits = x @ rng.normal(size=features)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = (logits + rng.normal(size=rows) > 0).astype(int)
    return frame


def builtin(frame: pd.DataFrame, epochs: int) -> float:
    features = [c for c in frame.columns if c != "label"]
    start = time.perf_counter()
    trainers.train("mlp_classifier", {**HYPER, "epochs": epochs}, frame, features, "label", 0)
    return time.perf_counter() - start


def handwritten(frame: pd.DataFrame, epochs: int) -> float:
    start = time.perf_counter()
    values = frame.drop(columns="label").to_numpy()
    x = torch.from_numpy(((values - values.mean(0)) / values.std(0)).astype(np.float32))
    y = torch.from_numpy(frame["label"].to_numpy().copy())
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimiser = torch.optim.Adam(net.parameters(), lr=HYPER["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        for i in range(0, len(x), HYPER["batch_size"]):
            batch = order[i:i + HYPER["batch_size"]]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(net(x[batch]), y[batch]).backward()
            optimiser.step()
    return time.perf_counter() - start


def full_run(frame: pd.DataFrame, epochs: int) -> float:
    from mlform.engine.provider import CreateRequest, Progress, ProviderContext, ResourceRef
    from mlform.providers.local.dataset import DatasetHandler
    from mlform.providers.local.training.handler import TrainingJobHandler

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame.to_parquet(root / "data.parquet", index=False)
        ctx = ProviderContext("bench", root, "local", {}, root / ".mlform" / "local")
        data = DatasetHandler(ctx).create(CreateRequest(
            ResourceRef("data", "dataset"), {"source": "data.parquet"}, "k"), Progress())
        start = time.perf_counter()
        done = TrainingJobHandler(ctx).create(CreateRequest(
            ResourceRef("bench", "training_job"),
            {"dataset": data.outputs["uri"], "algorithm": "mlp_classifier", "target": "label",
             "hyperparameters": {**HYPER, "epochs": epochs}}, "k"), Progress())
        elapsed = time.perf_counter() - start
        if done.error:
            raise SystemExit(done.error)
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many")
    parser.add_argument("--full-run", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frame = synthetic(args.rows, args.features)
    # Interleaved so that both see the same machine load; best of N filters noise.
    ours, direct = [], []
    for _ in range(args.repeat):
        ours.append(builtin(frame, args.epochs))
        direct.append(handwritten(frame, args.epochs))
    print(f"data: {args.rows} rows x {args.features} features, {args.epochs} epochs, "
          f"batch {HYPER['batch_size']}, hidden {HYPER['hidden_layers']}, 1 thread, "
          f"best of {args.repeat}")
    print(f"built-in mlp_classifier : {min(ours):8.3f} s")
    print(f"hand-written torch loop : {min(direct):8.3f} s")
    print(f"ratio                   : {min(ours) / min(direct):8.3f}")
    if args.full_run:
        print(f"whole training_job apply: {full_run(frame, args.epochs):8.3f} s")


if __name__ == "__main__":
    main()
