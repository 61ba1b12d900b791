"""Entry script of mlform's gate evaluation Processing jobs; never imported by mlform.

    python evaluate.py <artifact dir> <output json>

Measures each fairness and robustness gate listed in `mlform_job.json` on the
held-out rows the training job left next to the artifact (`holdout.csv`) and
writes `{"gates": [{"index": i, "value": v}, ...]}`.

    demographic_parity_difference  largest gap in positive-prediction rate between groups
    demographic_parity_ratio       smallest over largest positive-prediction rate
    four_fifths_rule               the same ratio (passes at 0.8 or more)
    equalized_odds_difference      largest gap in true- or false-positive rate
    gaussian_noise                 drop of the metric when numeric features get noise of
                                   `noise` standard deviations (a loss is a drop too)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rates(y_true, y_pred, groups, positive):
    import numpy as np

    out = {}
    for group in np.unique(groups):
        mask = groups == group
        pred, true = y_pred[mask] == positive, y_true[mask] == positive
        out[group] = {"selection": pred.mean(),
                      "tpr": pred[true].mean() if true.any() else 0.0,
                      "fpr": pred[~true].mean() if (~true).any() else 0.0}
    return out


def fairness(kind, predictor, holdout, column):
    import numpy as np

    if predictor.task != "classification":
        raise SystemExit(f"fairness gate '{kind}' needs a classification model")
    positive = predictor.classes[-1]
    y_pred = np.asarray(predictor.predict(holdout), dtype=object)
    y_true = holdout[predictor.target].to_numpy(dtype=object)
    by_group = rates(y_true, y_pred, holdout[column].astype(str).to_numpy(), positive)
    selection = [r["selection"] for r in by_group.values()]
    if kind == "demographic_parity_difference":
        return max(selection) - min(selection)
    if kind in ("demographic_parity_ratio", "four_fifths_rule"):
        return min(selection) / max(selection) if max(selection) else 1.0
    tpr = [r["tpr"] for r in by_group.values()]
    fpr = [r["fpr"] for r in by_group.values()]
    return max(max(tpr) - min(tpr), max(fpr) - min(fpr))


def robustness(gate, predictor, holdout, seed=0):
    import numpy as np
    from mlform.ml.metrics import GREATER_IS_BETTER, evaluate, main_metric

    metric = gate.get("robustness_metric") or main_metric(predictor.task,
                                                          len(predictor.classes or []))
    noisy = holdout.copy()
    rng = np.random.default_rng(seed)
    for name in predictor.features:
        if noisy[name].dtype.kind == "f" or noisy[name].dtype.kind in "iu":
            std = float(noisy[name].std() or 0.0)
            noisy[name] = noisy[name] + rng.normal(0, float(gate["noise"]) * std, len(noisy))
    clean, perturbed = evaluate(predictor, holdout)[metric], evaluate(predictor, noisy)[metric]
    return clean - perturbed if GREATER_IS_BETTER[metric] else perturbed - clean


def main(model_dir: str, output: str) -> None:
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from mlform.ml.artifact import load_predictor

    gates = json.loads((HERE / "mlform_job.json").read_text())["gates"]
    predictor = load_predictor(model_dir)
    holdout = pd.read_csv(Path(model_dir) / "holdout.csv")
    values = []
    for gate in gates:
        if gate.get("fairness"):
            value = fairness(gate["fairness"], predictor, holdout, gate["sensitive_column"])
        else:
            value = robustness(gate, predictor, holdout)
        values.append({"index": gate["index"], "value": float(value)})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps({"gates": values}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
