"""A training job that asks for a GPU trains on it when one is present; on a machine
without one it trains on the CPU and says so, in its progress and in its recorded
outputs. Which of the two tests runs depends on the machine: the suite's usual
machines have no GPU, and `pytest tests/providers/local/e2e/test_gpu_request.py`
on one that has a CUDA device is the GPU check."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from .conftest import (
    INSTANCE,
    assert_no_processes,
    health,
    mlform_ok,
    output,
    write_fraud_data,
)

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


GPU_SERVED_STACK = GPU_STACK + """
      fraud_model:
        type: model
        artifact: ${train.artifact}
      fraud_endpoint:
        type: endpoint
        variants:
          champion: {model: "${fraud_model.uri}"}
        compute: {gpus: 1}
    outputs:
      url: {value: "${fraud_endpoint.url}"}
    """


def test_a_gpu_request_with_a_gpu_trains_and_serves_on_it(null_stack, run_mlform):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this machine has no CUDA device")
    stack = null_stack(GPU_SERVED_STACK)
    write_fraud_data(stack, seed=1)

    try:
        applied = mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack,
                            timeout=600)
        assert "train: training on cuda" in applied.stdout, applied.stdout
        shown = json.loads(mlform_ok(run_mlform, ["show", "train", "--json"], stack).stdout)
        assert (shown["outputs"]["device"], shown["outputs"]["device_note"]) == ("cuda", "")

        # same inputs and seed, same metrics: a genuine second run on the GPU
        shutil.rmtree(stack / ".mlform/local/runs/train" / shown["id"])
        mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack, timeout=600)
        again = json.loads(mlform_ok(run_mlform, ["show", "train", "--json"], stack).stdout)
        assert again["outputs"]["metrics"] == shown["outputs"]["metrics"]

        assert health(output(run_mlform, stack, "url"))["device"] == "cuda"
        url = output(run_mlform, stack, "url")
        answer = httpx.post(f"{url}/predict", json={"instances": [INSTANCE, INSTANCE]},
                            timeout=10)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2
    finally:
        mlform_ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], stack)
        assert_no_processes(stack)
