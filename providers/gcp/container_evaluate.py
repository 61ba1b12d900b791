"""Entry script of mlform's gate evaluation custom jobs (runs inside the PyTorch training
image); never imported by mlform.

    python -c BOOTSTRAP <bundle> evaluate.py <artifact gs:// folder> <output gs:// uri> \
        [<champion artifact gs:// folder>]

Judges every gate listed in `mlform_job.json` (`{"gates": [...], "seed": <the training
run's seed>, "sensitive": [[index, "min" | "max"], ...], "champion": ...}`) on the
held-out rows the training job left next to the artifact (`holdout.csv`), with
`mlform.ml.gates`, the same code the local provider runs. `champion`, present when a
gate is `better_than: champion`, is `{"name": "version 3"}` (that version's artifact is
the third argument, fetched and scored on the candidate's held-out rows), null (no
champion yet) or why none can be compared (`mlform.ml.champion`). Writes

    {"format": 2, "gates": [<GateResult.to_dict()>, ...]}   # in the gates' order
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORMAT = 2


def storage_client():
    from google.cloud import storage

    return storage.Client(project=os.environ.get("CLOUD_ML_PROJECT_ID"))


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("gs://"):].partition("/")
    return bucket, key


def download_dir(uri: str, to: Path) -> None:
    bucket, prefix = split_uri(uri.rstrip("/") + "/")
    for blob in storage_client().list_blobs(bucket, prefix=prefix):
        path = to / blob.name[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(path))


def evaluation(model_dir: str | Path, settings: dict[str, Any],
               champion_dir: str | Path | None = None) -> dict[str, Any]:
    """What the job writes: every gate's result on the artifact's held-out rows."""
    import pandas as pd
    from mlform.ml.artifact import load_predictor
    from mlform.ml.champion import SETTING, load
    from mlform.ml.gates import NO_CHAMPION_HERE, evaluate_gates

    predictor = load_predictor(model_dir)
    # the very floats the training job wrote, so values match the local provider's
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    holdout = pd.read_csv(Path(model_dir) / "holdout.csv", **exact)
    sensitive = [(int(i), str(bound)) for i, bound in settings.get("sensitive", [])]
    champion = load(settings.get(SETTING, NO_CHAMPION_HERE), champion_dir)
    results = evaluate_gates(settings["gates"], predictor, holdout,
                             int(settings.get("seed") or 0), sensitive, champion=champion)
    return {"format": FORMAT, "gates": [r.to_dict() for r in results]}


def main(artifact: str, output: str, champion: str | None = None) -> None:
    sys.path.insert(0, str(HERE))
    settings = json.loads((HERE / "mlform_job.json").read_text())
    local = Path(tempfile.mkdtemp(prefix="mlform-eval-"))
    download_dir(artifact, local)
    champion_dir = None
    if champion:
        champion_dir = Path(tempfile.mkdtemp(prefix="mlform-champion-"))
        download_dir(champion, champion_dir)
    result = evaluation(local, settings, champion_dir)
    bucket, key = split_uri(output)
    storage_client().bucket(bucket).blob(key).upload_from_string(
        json.dumps(result, indent=1), content_type="application/json")


if __name__ == "__main__":
    main(*sys.argv[1:4])
