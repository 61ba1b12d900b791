"""Batch scoring of a large input in chunks against loading it all and scoring at once.

A generated Parquet dataset (`--rows`, default 1,000,000, 16 numeric features and
an id) is stored through the local dataset resource and scored with a registered
16-64-64-2 MLP:

    chunked   `batch_job` scoring, `--chunk-rows` at a time (each size listed)
    one shot  the baseline: read the whole table, predict once, write once
    rerun     the same batch job again: adopts the stored predictions
    imports   only the libraries and the loaded model: the floor under both

Each runs in a fresh process that reports its wall time and peak resident memory
(`resource.getrusage` max RSS), so one cannot inherit another's allocations. The
setup runs in a process of its own too: on Linux a child's max RSS starts from
its parent's at the time of the fork, so the parent stays small. The chunked and
one-shot predictions are checked to be identical.

    .venv/bin/python bench/batch_scoring.py [--rows 1000000] [--chunk-rows 100000,10000]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_FEATURES = 16
MODEL_URI = "local://models/bench/1"


def setup(root: Path, rows: int) -> str:
    """Store the dataset and register the model under `root`; returns the dataset uri."""
    import numpy as np
    import pandas as pd
    import torch
    from mlform.engine.provider import CreateRequest, Progress, ResourceRef
    from mlform.ml.artifact import save_model
    from mlform.providers.local.dataset import DatasetHandler
    from mlform.providers.local.paths import LocalPaths

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, N_FEATURES)).astype("float64"),
                         columns=[f"x{i}" for i in range(N_FEATURES)])
    frame.insert(0, "id", np.arange(rows))
    source = root / "input.parquet"
    frame.to_parquet(source, index=False, row_group_size=100_000)
    del frame
    ctx = context(root)
    stored = DatasetHandler(ctx).create(CreateRequest(
        ResourceRef("input", "dataset"), {"source": str(source)}, "k"), Progress())
    assert stored.error is None, stored.error

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
        torch.nn.ReLU(), torch.nn.Linear(64, 2))
    version_dir = LocalPaths(ctx.data_dir).model_version("bench", 1)
    save_model(version_dir / "artifact", module, {
        "task": "classification", "features": [f"x{i}" for i in range(N_FEATURES)],
        "target": "y", "classes": [0, 1]})
    (version_dir / "meta.json").write_text(json.dumps({"version": 1}))
    return stored.outputs["uri"]


def context(root: Path):
    from mlform.engine.provider import ProviderContext

    return ProviderContext("bench", root, "local", {}, root / ".mlform" / "local")


# --- what each child process measures ---------------------------------------------

def child(mode: str, root: Path, data_uri: str, chunk_rows: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from mlform.engine.provider import Progress
    from mlform.ml.artifact import load_predictor
    from mlform.providers.local.batch import BatchJobHandler
    from mlform.providers.local.paths import LocalPaths

    paths = LocalPaths(context(root).data_dir)
    started = time.perf_counter()
    if mode in ("chunked", "rerun"):
        meta = BatchJobHandler(context(root)).score(f"job{chunk_rows}", MODEL_URI, data_uri,
                                                    chunk_rows, Progress())
        rows, out = meta["rows"], str(paths.batch(f"job{chunk_rows}", meta["version"])
                                      / "predictions.parquet")
    else:
        import pandas as pd

        predictor = load_predictor(paths.resolve(MODEL_URI) / "artifact")
        if mode == "imports":
            import pyarrow.parquet  # noqa: F401 - the floor holds every library both use

            rows, out = 0, None
        else:
            meta = json.loads((paths.resolve(data_uri) / "meta.json").read_text())
            frame = pd.read_parquet(paths.resolve(data_uri) / meta["file"])
            frame["prediction"] = predictor.predict(frame)
            out = str(root / "one_shot.parquet")
            frame.to_parquet(out, index=False)
            rows = len(frame)
    return {"mode": mode, "chunk_rows": chunk_rows, "rows": rows, "out": out,
            "seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(mode: str, root: Path, data_uri: str, chunk_rows: int = 0) -> dict:
    return run_child(["--child", mode, "--root", str(root), "--data", data_uri,
                      "--chunk-rows", str(chunk_rows)])


def run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_predictions(a: str, b: str) -> bool:
    import pyarrow.parquet as pq

    return pq.read_table(a, columns=["prediction"]).equals(
        pq.read_table(b, columns=["prediction"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", default="100000,10000")
    parser.add_argument("--child")
    parser.add_argument("--root")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child == "setup":
        print(json.dumps({"data_uri": setup(Path(args.root), args.rows)}))
        return
    if args.child:
        print(json.dumps(child(args.child, Path(args.root), args.data, int(args.chunk_rows))))
        return

    chunk_sizes = [int(c) for c in args.chunk_rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="mlform-batch-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        data_uri = run_child(["--child", "setup", "--root", str(root), "--rows",
                              str(args.rows)])["data_uri"]
        print(f"{args.rows:,} rows x {N_FEATURES} features; python {platform.python_version()}"
              f", {platform.machine()}; setup {time.perf_counter() - t0:.1f}s", flush=True)
        results = [measure("imports", root, data_uri), measure("one_shot", root, data_uri)]
        for size in chunk_sizes:
            results.append(measure("chunked", root, data_uri, size))
            results.append(measure("rerun", root, data_uri, size))
        baseline = results[1]
        print(f"\n{'run':<22}{'wall s':>9}{'peak RSS MB':>13}{'vs one shot':>13}")
        for r in results:
            label = r["mode"] + (f" ({r['chunk_rows']:,})" if r["chunk_rows"] else "")
            ratio = f"{r['seconds'] / baseline['seconds']:.2f}x" if r["mode"] != "imports" \
                else ""
            print(f"{label:<22}{r['seconds']:>9.3f}{r['peak_rss_mb']:>13.0f}{ratio:>13}")
        chunked = [r for r in results if r["mode"] == "chunked"]
        agree = all(same_predictions(r["out"], baseline["out"]) for r in chunked)
        print(f"\nchunked predictions identical to one-shot: {agree}")
        print("peak RSS above the imports-only floor: " + ", ".join(
            f"{r['mode']}{' ' + format(r['chunk_rows'], ',') if r['chunk_rows'] else ''} "
            f"{r['peak_rss_mb'] - results[0]['peak_rss_mb']:.0f} MB"
            for r in results[1:] if r["mode"] != "rerun"))
        if not agree:
            sys.exit(1)


if __name__ == "__main__":
    main()
