"""Entry script of mlform's gate evaluation Processing jobs; never imported by mlform.

    python evaluate.py <artifact dir> <output json> [<champion artifact dir>]

Judges every gate listed in `mlform_job.json` (`{"gates": [...], "seed": <the
training run's seed>, "sensitive": [[index, "min" | "max"], ...], "champion": ...}`)
on the held-out rows the training job left next to the artifact (`holdout.csv`), with
`mlform.ml.gates`, the same code the local provider runs. `champion`, present when a
gate is `better_than: champion`, is `{"name": "version 3"}` (that version's artifact is
the third argument), null (no champion yet) or why none can be compared; the champion
predicts the candidate's held-out rows. Writes

    {"format": 2, "gates": [<GateResult.to_dict()>, ...],   # in the gates' order
     "importance": <mlform.ml.explain.permutation_importance> | {"note": why}}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORMAT = 2


def evaluation(model_dir: str | Path, settings: dict[str, Any],
               champion_dir: str | Path | None = None) -> dict[str, Any]:
    """What the job writes: every gate's result on the artifact's held-out rows, and
    the artifact's permutation importance on them."""
    import pandas as pd
    from mlform.ml.artifact import load_predictor
    from mlform.ml.champion import load
    from mlform.ml.explain import permutation_importance
    from mlform.ml.gates import NO_CHAMPION_HERE, evaluate_gates

    predictor = load_predictor(model_dir)
    # the very floats the training job wrote, so values match the local provider's
    # (pandas 3 reads them exactly by default and deprecates the option)
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    holdout = pd.read_csv(Path(model_dir) / "holdout.csv", **exact)
    sensitive = [(int(i), str(bound)) for i, bound in settings.get("sensitive", [])]
    seed = int(settings.get("seed") or 0)
    champion = load(settings.get("champion", NO_CHAMPION_HERE), champion_dir)
    results = evaluate_gates(settings["gates"], predictor, holdout, seed, sensitive,
                             champion=champion)
    try:
        importance: dict[str, Any] = permutation_importance(predictor, holdout, seed=seed)
    except ValueError as e:
        importance = {"note": str(e)}
    return {"format": FORMAT, "gates": [r.to_dict() for r in results],
            "importance": importance}


def main(model_dir: str, output: str, champion_dir: str | None = None) -> None:
    sys.path.insert(0, str(HERE))
    settings = json.loads((HERE / "mlform_job.json").read_text())
    result = evaluation(model_dir, settings, champion_dir)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
