"""A training job that asks for a GPU on a machine without one trains on the CPU and
says so, in its progress and in its recorded outputs."""

from __future__ import annotations

import json

import pytest

from .conftest import assert_no_processes, mlform_ok, write_fraud_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GPU_STACK = """
    version: 1
    stack: gpu-request
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
        compute: {gpus: 1}
    """


def test_a_gpu_request_without_a_gpu_trains_on_the_cpu(null_stack, run_mlform):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    stack = null_stack(GPU_STACK)
    write_fraud_data(stack, seed=1)

    try:
        applied = mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack,
                            timeout=300)
        assert "train: training on cpu (no GPU available: trained on CPU)" in applied.stdout

        shown = json.loads(mlform_ok(run_mlform, ["show", "train", "--json"], stack).stdout)
        assert shown["outputs"]["device"] == "cpu"
        assert shown["outputs"]["device_note"] == "no GPU available: trained on CPU"
        assert mlform_ok(run_mlform, ["show", "train"], stack).stdout.count('device = "cpu"') == 1
        log = (stack / ".mlform/local/runs/train" / shown["id"] / "train.log").read_text()
        assert "no GPU available" in log
    finally:
        mlform_ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], stack)
        assert_no_processes(stack)
