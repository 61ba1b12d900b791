"""The local provider's move verbs both ways, through the engine in-process: a stack
trained on one local provider moved to a second one (`.mlform/old/` to `.mlform/new/`),
so the local `export` and the local `import_` of every movable type run on real files:
the run is carried over (not trained again) and served the same predictions, the model
is registered with the same gate results, and the old files are gone."""

from __future__ import annotations

import json

import pytest
from mlform.engine.apply.applier import Applier
from mlform.engine.plan.model import Action
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.session import Options, Session

pytestmark = pytest.mark.e2e

SPEC = """\
version: 1
stack: local-moves
providers:
  old: {{type: local}}
  new: {{type: local}}
resources:
  data:
    type: dataset
    provider: {p}
    source: data/transactions.csv
  train:
    type: training_job
    provider: {p}
    dataset: ${{data.uri}}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {{epochs: 2}}
  m:
    type: model
    provider: {p}
    artifact: ${{train.artifact}}
    gates: [{{metric: auc, min: 0.1}}]
"""


def apply(stack_dir):
    session = Session(Options(stack_dir=stack_dir), "apply")
    try:
        state = session.read_state()
        plan = make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions())
        result = Applier(session.stack, state, session.variables, session.providers,
                         session.backend).apply(plan)
        return plan, result
    finally:
        session.close()


def predictions(run_dir) -> list:
    import pandas as pd
    from mlform.ml.artifact import load_predictor

    rows = pd.read_parquet(run_dir / "holdout.parquet").drop(columns=["is_fraud"])
    return list(load_predictor(run_dir / "artifact").predict_proba(rows.to_dict("records")))


def test_a_stack_moves_between_two_local_providers(tmp_path):
    from mlform.engine.scaffold import write_sample_data

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=200, seed=5)
    (tmp_path / "mlform.yaml").write_text(SPEC.format(p="old"))
    _, first = apply(tmp_path)
    assert first.ok, first.failed
    before = first.state.resources
    old_run = tmp_path / ".mlform" / "old" / "runs" / "train" / before["train"].id
    served = predictions(old_run)

    (tmp_path / "mlform.yaml").write_text(SPEC.format(p="new"))
    plan, moved = apply(tmp_path)
    assert {c.name: c.action for c in plan.changes} == dict.fromkeys(("data", "train", "m"),
                                                                     Action.MOVE)
    assert moved.ok, moved.failed
    after = moved.state.resources
    assert {r.provider for r in after.values()} == {"new"}
    assert after["data"].outputs["version"] == before["data"].outputs["version"]
    assert after["train"].id == before["train"].id
    assert after["train"].outputs["metrics"] == before["train"].outputs["metrics"]
    assert after["m"].outputs["gates"] == before["m"].outputs["gates"]
    new_run = tmp_path / ".mlform" / "new" / "runs" / "train" / after["train"].id
    status = json.loads((new_run / "status.json").read_text())
    assert status["moved_from"] == "old" and not (new_run / "train.log").exists()
    assert (new_run / "holdout.parquet").is_file()
    assert not old_run.exists()
    assert not list((tmp_path / ".mlform" / "old").glob("datasets/*/*/data.csv"))
    assert not list((tmp_path / ".mlform" / "old").glob("registry/*/*/meta.json"))
    assert predictions(new_run) == served  # the same model, not a retrained one
    _, again = apply(tmp_path)  # nothing left to do
    assert again.ok and not again.effects
