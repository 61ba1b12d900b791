"""Training through the ray provider (`mlform apply` of a dataset and a training job)
against the same training run submitted as a plain Ray job script, on the same cluster
and data, interleaved.

    .venv/bin/python bench/ray_training.py [--rows 20000] [--features 20] [--epochs 5]
        [--repeat 3] [--address http://head:8265 --storage /shared/path]

Without `--address`, a single-node cluster (2 CPUs) is started on 127.0.0.1 for the
run (as the tests start theirs) and stopped at the end. The plain job is a script that
reads the same CSV from the shared storage and trains the same network (hidden layers
64 and 32, Adam, batch 256, standardised features, single-threaded) in PyTorch; it is
submitted with `JobSubmissionClient` and waited for with the same poll interval.
mlform's time is the whole `mlform apply` of the training job (the dataset is applied
before the clock starts): process start, refresh and plan, the job's submission under
its idempotency key, mlform's runtime (split, held-out rows, training, artifact
export, held-out metrics), polling, and the outputs. Prints the best of `--repeat`
of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN, LR, BATCH = [64, 32], 1e-3, 256
POLL = 0.2

PLAIN_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(1)
    frame = pd.read_csv(sys.argv[1])
    epochs = int(sys.argv[2])
    values = frame.drop(columns="label").to_numpy()
    x = torch.from_numpy(((values - values.mean(0)) / values.std(0)).astype(np.float32))
    y = torch.from_numpy(frame["label"].to_numpy().copy())
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
    torch.save(net.state_dict(), sys.argv[3])
""").format(lr=LR, batch=BATCH)

STACK = textwrap.dedent("""
    version: 1
    stack: bench-{n}
    providers:
      ray: {{address: "{address}", storage: "{storage}", poll_interval: {poll}}}
    resources:
      rows: {{type: dataset, source: data.csv}}
      train:
        type: training_job
        dataset: ${{rows.uri}}
        algorithm: mlp_classifier
        target: label
        hyperparameters: {{epochs: {epochs}, hidden_layers: {hidden}, lr: {lr}, batch_size: {batch}}}
""")


def synthetic(path: Path, rows: int, features: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    logits = x @ rng.normal(size=features)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = (logits + rng.normal(size=rows) > 0).astype(int)
    frame.to_csv(path, index=False)


def mlform(args: list[str], cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mlform.engine.cli.main", *args,
                           "--auto-approve", "--no-color"], cwd=cwd, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mlform {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def through_mlform(n: int, work: Path, data: Path, address: str, storage: Path,
                   epochs: int) -> float:
    stack = work / f"stack-{n}"
    stack.mkdir()
    (stack / "data.csv").symlink_to(data)
    (stack / "mlform.yaml").write_text(STACK.format(
        n=n, address=address, storage=storage, poll=POLL, epochs=epochs, hidden=HIDDEN,
        lr=LR, batch=BATCH))
    mlform(["apply", "--target", "rows"], stack)
    start = time.perf_counter()
    mlform(["apply"], stack)
    elapsed = time.perf_counter() - start
    mlform(["destroy"], stack)
    return elapsed


def plain_job(n: int, client, data: Path, storage: Path, epochs: int) -> float:
    script = storage / "plain_train.py"
    script.write_text(PLAIN_SCRIPT)
    start = time.perf_counter()
    sid = client.submit_job(
        entrypoint=f"{sys.executable} {script} {data} {epochs} {storage / f'plain-{n}.pt'}",
        entrypoint_num_cpus=1, submission_id=f"bench-plain-{n}-{os.getpid()}")
    while str(client.get_job_status(sid).value) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(POLL)
    elapsed = time.perf_counter() - start
    if str(client.get_job_status(sid).value) != "SUCCEEDED":
        raise SystemExit(f"the plain job failed:\n{client.get_job_logs(sid)}")
    client.delete_job(sid)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many")
    parser.add_argument("--address", help="an existing cluster's dashboard URL")
    parser.add_argument("--storage", help="with --address: a path the cluster shares")
    args = parser.parse_args()
    from ray.job_submission import JobSubmissionClient

    cluster = None
    if args.address:
        address, storage = args.address, Path(args.storage)
    else:
        sys.path.insert(0, str(ROOT / "tests" / "providers" / "ray"))
        import ray_testcluster

        cluster = ray_testcluster.start()
        address, storage = cluster.address, cluster.storage
    try:
        client = JobSubmissionClient(address)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            data = storage / "bench-data.csv"
            synthetic(data, args.rows, args.features)
            ours, plain = [], []
            for n in range(args.repeat):  # interleaved: both see the same machine load
                ours.append(through_mlform(n, work, data, address, storage, args.epochs))
                plain.append(plain_job(n, client, data, storage, args.epochs))
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"data: {args.rows} rows x {args.features} features, {args.epochs} epochs, "
          f"batch {BATCH}, hidden {HIDDEN}, 1 thread, best of {args.repeat}; "
          f"cluster {address}")
    print(f"mlform apply (ray provider) : {min(ours):8.3f} s   all: "
          + ", ".join(f"{t:.2f}" for t in ours))
    print(f"plain Ray job script        : {min(plain):8.3f} s   all: "
          + ", ".join(f"{t:.2f}" for t in plain))
    print(f"ratio                       : {min(ours) / min(plain):8.3f}")


if __name__ == "__main__":
    main()
