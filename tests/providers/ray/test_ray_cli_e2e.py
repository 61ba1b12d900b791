"""The ray provider through the installed `mlform` command, on a real single-node Ray
cluster: the contract's example stack without its endpoint (dataset -> training_job ->
model with a gate) applies (its job asks for a GPU the cluster lacks: it trains on CPU
and says so, as on `local`), plans empty afterwards, survives a `kill -9` of apply
during training by adopting the Ray job, and destroys without leaving a job running.

The cases share one stack and run in file order.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

APPLY = ["apply", "--auto-approve", "--no-color"]
STACK = """
version: 1
stack: fraud-detection
providers:
  gpu: {{type: ray, address: "{address}", storage: "{storage}", poll_interval: 0.2}}
variables:
  min_auc: {{type: number, default: 0.6}}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: {epochs}, lr: 0.01}}
    compute: {{gpus: 1}}                # the test cluster has none: trains on CPU, says so
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: ${{var.min_auc}}
outputs:
  model: {{value: "${{fraud_model.uri}}"}}
"""


def write(stack_dir: Path, cluster, epochs: int, seed: int = 1) -> None:
    from mlform.engine.scaffold import write_sample_data

    stack_dir.mkdir(parents=True, exist_ok=True)
    (stack_dir / "mlform.yaml").write_text(STACK.format(
        address=cluster.address, storage=cluster.storage / stack_dir.name, epochs=epochs))
    (cluster.storage / stack_dir.name).mkdir(exist_ok=True)
    write_sample_data(stack_dir / "data" / "transactions.csv", rows=800, seed=seed)


def ok(run_mlform, args: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    proc = run_mlform(args, cwd, **kwargs)
    assert proc.returncode == 0, (f"mlform {' '.join(map(str, args))} exited "
                                  f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def state(stack_dir: Path) -> dict:
    return json.loads((stack_dir / ".mlform" / "state.json").read_text())


def jobs(cluster, stack: str = "fraud-detection") -> list:
    from ray.job_submission import JobSubmissionClient

    return [j for j in JobSubmissionClient(cluster.address).list_jobs()
            if (j.metadata or {}).get("mlform-stack") == stack]


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory, ray_cluster):
    directory = tmp_path_factory.mktemp("ray-fraud")
    write(directory, ray_cluster, epochs=3)
    return directory


def test_apply_trains_registers_and_a_second_plan_is_empty(stack_dir, ray_cluster,
                                                           run_mlform):
    ok(run_mlform, APPLY, stack_dir, timeout=300)

    resources = state(stack_dir)["resources"]
    train = resources["train"]
    assert train["id"].startswith("mlform-fraud-detection-train-")
    assert train["outputs"]["artifact"] == f"ray://runs/train/{train['id']}"
    assert train["outputs"]["metrics"]["auc"] > 0.6
    assert (train["outputs"]["device"], train["outputs"]["device_note"]) == (
        "cpu", "no GPU in the Ray cluster: trained on CPU")
    model = resources["fraud_model"]["outputs"]
    assert (model["uri"], model["gates"][0]["passed"]) == ("ray://models/fraud_model/1", True)
    [job] = jobs(ray_cluster)
    assert (job.submission_id, str(job.status.value)) == (train["id"], "SUCCEEDED")
    assert job.metadata["mlform-resource"] == "train"
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack_dir)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_a_killed_apply_adopts_the_running_job(stack_dir, ray_cluster, run_mlform,
                                               spawn_mlform):
    """New data replaces the run; the apply is killed once the Ray job is submitted, and
    the next apply finds that job by its submission id instead of training again."""
    write(stack_dir, ray_cluster, epochs=40, seed=7)
    proc = spawn_mlform(APPLY, stack_dir)
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if line.startswith("train: ") and "submitted Ray job" in line:
            proc.kill()
            break
    proc.wait(timeout=30)
    assert proc.returncode == -9, "\n".join(seen) + proc.stderr.read()
    [running] = [j for j in jobs(ray_cluster) if str(j.status.value) != "SUCCEEDED"]

    again = ok(run_mlform, APPLY, stack_dir, timeout=300)

    assert "adopting it" in again.stdout, again.stdout
    assert state(stack_dir)["resources"]["train"]["id"] == running.submission_id
    same = [j for j in jobs(ray_cluster) if j.submission_id == running.submission_id]
    assert [str(j.status.value) for j in same] == ["SUCCEEDED"]
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack_dir)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_destroy_stops_and_forgets_every_job(stack_dir, ray_cluster, run_mlform):
    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], stack_dir, timeout=180)

    assert jobs(ray_cluster) == []
    assert not any((ray_cluster.storage / stack_dir.name / "fraud-detection").glob("runs/*/*"))
