"""Entry script of mlform's batch scoring command jobs (runs in the curated PyTorch
environment); never imported by mlform.

    python batch.py --model ${{inputs.model}} --data ${{inputs.data}} --out ${{outputs.scored}}

Loads the artifact with `mlform.ml.artifact`, reads the dataset in chunks of `chunk_rows`
(from `mlform_job.json`) and writes `predictions.jsonl` into the output folder: one line
per row, `{"row": <index>, "prediction": ...}`, in the dataset's order, then
`summary.json` (`{"rows": <count>}`), which the provider reads as the `rows` output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def model_folder(root: Path) -> Path:
    from mlform.ml.artifact import META_FILE

    if (root / META_FILE).is_file():
        return root
    for found in sorted(root.rglob(META_FILE)):
        return found.parent
    raise SystemExit(f"error: no {META_FILE} under {root}")


def chunks(path: Path, size: int):
    import pandas as pd

    if path.is_dir():
        path = sorted(p for p in path.iterdir() if p.suffix in (".csv", ".parquet"))[0]
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        for start in range(0, len(frame), size):
            yield frame.iloc[start:start + size]
    else:
        yield from pd.read_csv(path, chunksize=size)


def main() -> None:
    sys.path.insert(0, str(HERE))
    from mlform.ml.artifact import load_predictor

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    job = json.loads((HERE / "mlform_job.json").read_text())
    predictor = load_predictor(model_folder(Path(args.model)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    row = 0
    with (out / "predictions.jsonl").open("w") as f:
        for chunk in chunks(Path(args.data), int(job["chunk_rows"])):
            rows = chunk[predictor.features].to_dict(orient="records")
            for prediction in predictor.predict(rows):
                f.write(json.dumps({"row": row, "prediction": prediction}) + "\n")
                row += 1
    (out / "summary.json").write_text(json.dumps({"rows": row}))
    print(f"scored {row} rows", flush=True)


if __name__ == "__main__":
    main()
