"""A candidate model trained in the scratch copy, judged against the champion.

The candidate is scored on the champion's held-out rows when this machine has them
(a `local` champion keeps them beside its run), so both are measured on the same
rows; otherwise on the candidate's own held-out rows, and the champion's figures are
the ones its provider recorded in state. Gates are the model's gates as the plan
will apply them, judged by `mlform.ml.gates` exactly as registration judges them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOCAL_SCHEME = "local://"


def run_dir(data_dir: Path, artifact: Any) -> Path | None:
    """The run directory a `local://runs/...` artifact names under `data_dir`."""
    if not isinstance(artifact, str) or not artifact.startswith(LOCAL_SCHEME + "runs/"):
        return None
    parts = artifact[len(LOCAL_SCHEME + "runs/"):].split("/")
    return Path(data_dir) / "runs" / parts[0] / parts[1] if len(parts) >= 2 else None


def champion_rows(stack_dir: Path, provider_name: str, provider_type: str,
                  artifact: Any) -> Path | None:
    """The champion's held-out rows (its run's, read in place), when the champion is a
    local run on this machine."""
    if provider_type != "local":
        return None
    directory = run_dir(Path(stack_dir) / ".mlform" / provider_name, artifact)
    rows = directory / "holdout.parquet" if directory else None
    return rows if rows is not None and rows.is_file() else None


def judge(candidate_dir: Path, gates: list, sensitive, rows_path: Path,
          champion_metrics: dict[str, Any], champion_gates: list[dict]) -> dict[str, Any]:
    """Metric deltas and gate verdicts of the candidate in `candidate_dir` (a run
    directory) on the rows in `rows_path`."""
    import json

    import pandas as pd
    from mlform.ml.artifact import load_predictor
    from mlform.ml.gates import evaluate_gates
    from mlform.ml.metrics import evaluate

    predictor = load_predictor(candidate_dir / "artifact")
    rows = pd.read_parquet(rows_path)
    params = json.loads((candidate_dir / "params.json").read_text())
    after = evaluate(predictor, rows)
    results = evaluate_gates(gates, predictor, rows, int(params.get("seed") or 0),
                             sensitive=sensitive)
    before_gates = {g.get("gate"): g for g in champion_gates or []}
    names = [k for k, v in after.items() if isinstance(v, int | float)]
    return {
        "rows": len(rows),
        "metrics": [{"metric": k, "before": _number(champion_metrics.get(k)),
                     "after": float(after[k])} for k in names],
        "gates": [{"gate": r.gate, "kind": r.kind, "passed": r.passed,
                   "measured": r.measured, "detail": r.detail,
                   "before": _number((before_gates.get(r.gate) or {}).get("measured")),
                   "passed_before": (before_gates.get(r.gate) or {}).get("passed")}
                  for r in results],
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
