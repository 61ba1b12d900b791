"""`mlform apply` of a logistic_regression job on `mlform init`'s sample data: the run
reaches the optimum's held-out AUC (three Adam epochs left it at 0.81) and its artifact
is the network's weights, not an exported program."""

from __future__ import annotations

import json

import pytest
from mlform.engine.scaffold import write_sample_data

STACK = """\
version: 1
stack: linear
backend: {type: local}
providers:
  local: {}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${transactions.uri}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {epochs: 3}
"""


@pytest.mark.slow
@pytest.mark.e2e
def test_a_logistic_regression_job_reaches_the_optimum_and_saves_weights(
        tmp_path, run_mlform, stack_writer):
    directory = stack_writer(tmp_path / "stack", STACK)
    write_sample_data(directory / "data" / "transactions.csv")
    got = run_mlform(["apply", "--auto-approve", "--no-color"], directory, timeout=600)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "train: epoch 1/1 loss" in got.stdout
    state = json.loads((directory / ".mlform" / "state.json").read_text())
    metrics = state["resources"]["train"]["outputs"]["metrics"]
    assert metrics["auc"] == pytest.approx(0.877, abs=0.005), metrics
    runs = list((directory / ".mlform" / "local" / "runs" / "train").iterdir())
    assert sorted(p.name for p in (runs[0] / "artifact").iterdir()) == \
        ["model.json", "weights.npz"]
