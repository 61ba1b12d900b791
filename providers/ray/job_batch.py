"""One batch scoring run, as the entrypoint of a Ray job on the cluster:

    <python> -m mlform.providers.ray.job_batch <batch dir>

Reads `params.json` (the model artifact's and the input's paths on the shared storage,
`chunk_rows`), scores the input `chunk_rows` rows at a time into
`predictions.parquet` (every input column and a `prediction` column) and writes
`meta.json` last, which marks the predictions complete. Progress is printed as
`scored N/M rows` lines. Only the standard library and `mlform.ml` are imported.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PREDICTION_COLUMN = "prediction"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mlform.providers.ray.job_batch <batch dir>", file=sys.stderr)
        return 2
    out = Path(argv[0])
    params = json.loads((out / "params.json").read_text())
    started = time.monotonic()
    rows = score(params, out / "predictions.parquet")
    meta = {"version": params["version"], "model": params["model"], "input": params["input"],
            "rows": rows, "chunk_rows": params["chunk_rows"],
            "seconds": round(time.monotonic() - started, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = out / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out / "meta.json")
    print(f"scored {rows} rows into {out / 'predictions.parquet'}", flush=True)
    return 0


def score(params: dict, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlform.ml.artifact import load_predictor

    predictor = load_predictor(params["artifact"])
    total, writer, rows = params.get("rows"), None, 0
    try:
        for chunk in _chunks(Path(params["data"]), params["format"], int(params["chunk_rows"])):
            chunk[PREDICTION_COLUMN] = predictor.predict(chunk)
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            else:
                table = table.select(writer.schema.names).cast(writer.schema)
            writer.write_table(table)
            rows += len(chunk)
            print(f"scored {rows}/{total or '?'} rows", flush=True)
        if writer is None:  # an empty input still gets a (schema-only) predictions file
            pq.write_table(pa.table({PREDICTION_COLUMN: pa.array([], pa.null())}), out)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _chunks(data: Path, fmt: str, chunk_rows: int):
    if fmt == "csv":
        import pandas as pd

        with pd.read_csv(data, chunksize=chunk_rows) as reader:
            yield from reader
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(data).iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
