"""Entry script of mlform's gate evaluation command jobs (runs in the curated PyTorch
environment); never imported by mlform.

    python evaluate.py --model ${{inputs.model}} --out ${{outputs.evaluation}} \
        [--champion ${{inputs.champion}}]

Judges every gate listed in `mlform_job.json` (`{"gates": [...], "seed": <the training
run's seed>, "sensitive": [[index, "min" | "max"], ...], "champion": ...}`) on the
held-out rows the training job left next to the artifact (`holdout.csv`), with
`mlform.ml.gates`, the same code the local provider runs. `champion`, present when a
gate is `better_than: champion`, is `{"name": "version 3"}` (that version's artifact is
the `champion` input, scored on the candidate's held-out rows), null (no champion yet)
or why none can be compared (`mlform.ml.champion`). Writes `evaluation.json` into the
output folder:

    {"format": 2, "gates": [<GateResult.to_dict()>, ...]}   # in the gates' order
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORMAT = 2


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


def main() -> None:
    sys.path.insert(0, str(HERE))
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--champion")
    args = parser.parse_args()
    settings = json.loads((HERE / "mlform_job.json").read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(evaluation(args.model, settings, args.champion),
                                                    indent=1))


if __name__ == "__main__":
    main()
