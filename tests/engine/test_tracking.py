"""engine/tracking.py without a server: what becomes parameters, and a tracking server
that cannot be reached never fails an apply (the end-to-end test with a real MLflow
server is tests/providers/local/e2e/test_mlflow_tracking.py)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from mlform.engine.spec.models import StackFile
from mlform.engine.tracking import Tracker, _flat_params, _gate_metrics
from mlform.engine.values import Secret


def test_inputs_become_dotted_params_without_sensitive_values():
    inputs = {"algorithm": "mlp_classifier", "hyperparameters": {"lr": 0.01, "epochs": 3},
              "seed": 0, "token": Secret("hunter2"), "features": ["a", "b"],
              "timeout": None}
    assert dict(_flat_params(inputs)) == {
        "algorithm": "mlp_classifier", "hyperparameters.lr": "0.01",
        "hyperparameters.epochs": "3", "seed": "0", "features": '["a", "b"]'}


def test_gate_results_become_metrics():
    gates = [{"gate": "auc >= 0.8", "measured": 0.91, "passed": True},
             {"gate": "four_fifths_rule(sex)", "measured": None, "passed": False}]
    assert _gate_metrics(gates) == {"gates_passed": 0.0, "gate.0.auc": 0.91}


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("stack: s\n", None, id="no-tracking-configured"),
    pytest.param("stack: s\ntracking: {mlflow: {uri: 'http://h:1'}}\n", ("http://h:1", "s"),
                 id="experiment-defaults-to-the-stack-name"),
    pytest.param("stack: s\ntracking: {mlflow: {uri: 'http://h:1', experiment: e}}\n",
                 ("http://h:1", "e"), id="named-experiment"),
])
def test_the_stack_says_where_runs_go(text, expected):
    import yaml

    stack = SimpleNamespace(file=StackFile.model_validate(yaml.safe_load(text)), name="s")
    tracker = Tracker.for_stack(stack, print)
    assert (tracker and (tracker.uri, tracker.experiment)) == (expected or None)


def test_an_unreachable_server_is_reported_and_the_apply_goes_on(monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    said: list[str] = []
    tracker = Tracker(f"http://127.0.0.1:{port}", "e", "s", said.append)
    tracker.finished("training_job", "train", {"seed": 0},
                     {"run_id": "r1", "metrics": {"auc": 0.9}})
    assert len(said) == 1
    assert said[0].startswith(f"train: not logged to MLflow at http://127.0.0.1:{port}: ")
