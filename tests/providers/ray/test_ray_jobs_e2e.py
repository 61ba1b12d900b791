"""Ray Jobs beyond the example stack, through the installed `mlform` command on the
session's cluster: several instances train with Ray Train across workers; a batch job scores a dataset
with a registered version; a job deleted behind mlform's back is drift and a job of
this stack that the state does not know is an orphan; destroy leaves no job.

The cases share one stack and run in file order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

STACK = """
version: 1
stack: ray-jobs
providers:
  ray: {{address: "{address}", storage: "{storage}", poll_interval: 0.2}}
resources:
  rows:
    type: dataset
    source: data/rows.csv
  spread:
    type: training_job
    dataset: ${{rows.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: 2, hidden_layers: [8]}}
    compute: {{instances: 2, cpus: 1}}
  spread_model:
    type: model
    artifact: ${{spread.artifact}}
  scores:
    type: batch_job
    model: ${{spread_model.uri}}
    dataset: ${{rows.uri}}
    chunk_rows: 100
"""


def ok(run_mlform, args: list, cwd: Path, **kwargs):
    proc = run_mlform(args, cwd, **kwargs)
    assert proc.returncode == 0, (f"mlform {' '.join(map(str, args))} exited "
                                  f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def client(cluster):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(cluster.address)


def jobs(cluster) -> list:
    return [j for j in client(cluster).list_jobs()
            if (j.metadata or {}).get("mlform-stack") == "ray-jobs"]


def outputs(stack_dir: Path, name: str) -> dict:
    """The resource's outputs and the provider's private data, as the provider sees them."""
    res = json.loads((stack_dir / ".mlform" / "state.json").read_text())["resources"][name]
    return {**res["outputs"], **res.get("private", {})}


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory, ray_cluster):
    from mlform.engine.scaffold import write_sample_data

    directory = tmp_path_factory.mktemp("ray-jobs")
    storage = ray_cluster.storage / directory.name
    storage.mkdir()
    (directory / "mlform.yaml").write_text(STACK.format(address=ray_cluster.address,
                                                        storage=storage))
    write_sample_data(directory / "data" / "rows.csv", rows=400, seed=3)
    return directory


def test_workers_and_batch(stack_dir, ray_cluster, run_mlform):
    ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack_dir, timeout=400)

    spread = outputs(stack_dir, "spread")
    assert set(spread["metrics"]) >= {"auc", "accuracy"}
    logs = client(ray_cluster).get_job_logs(spread["run_id"])
    assert "training on cpu in 2 Ray Train workers" in logs
    run_dir = Path(outputs(stack_dir, "rows")["path"]).parents[3] / "runs" / "spread" / \
        spread["run_id"]
    assert (run_dir / "artifact" / "model.json").is_file()
    scores = outputs(stack_dir, "scores")
    assert scores["rows"] == 400
    assert scores["output_uri"].startswith("ray://batch/scores/")
    import pandas as pd

    predictions = pd.read_parquet(scores["path"])
    assert len(predictions) == 400 and "prediction" in predictions.columns
    # A finished batch job's record is dropped: its predictions are the resource.
    assert [j.metadata["mlform-resource"] for j in jobs(ray_cluster)] == ["spread"]


def test_a_deleted_job_is_drift_and_an_unknown_one_an_orphan(stack_dir, ray_cluster,
                                                            run_mlform):
    gone = outputs(stack_dir, "spread")["run_id"]
    client(ray_cluster).delete_job(gone)
    stray = client(ray_cluster).submit_job(
        entrypoint="true", submission_id="mlform-ray-jobs-stray-0000",
        metadata={"mlform-stack": "ray-jobs", "mlform-resource": "stray",
                  "mlform-type": "training_job", "mlform-provider": "ray"})

    proc = run_mlform(["drift", "--no-color"], stack_dir)

    report = proc.stdout + proc.stderr
    assert proc.returncode != 0, report
    assert "spread" in report and f"Ray job {gone} is gone from the cluster" in report, report
    assert stray in report and "orphan" in report, report
    client(ray_cluster).delete_job(stray) if _ended(ray_cluster, stray) else None


def _ended(cluster, sid: str) -> bool:
    import time

    for _ in range(100):
        if str(client(cluster).get_job_status(sid).value) in ("SUCCEEDED", "FAILED"):
            return True
        time.sleep(0.2)
    return False


def test_destroy_leaves_no_job(stack_dir, ray_cluster, run_mlform):
    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], stack_dir, timeout=180)

    assert jobs(ray_cluster) == []
