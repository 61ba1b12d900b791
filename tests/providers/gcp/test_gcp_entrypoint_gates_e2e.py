"""The gcp provider's paths the example stack does not walk, in one stack through the
installed `mlform` command on the Vertex AI fake and the GCS emulator: a training job
running its own `entrypoint:` script (docs/training-scripts.md) as a CustomJob; a model
whose fairness and robustness gates are judged by the evaluation custom job; and a
monitor over the live endpoint, ticked by `mlform watch --once` on the requests the
serving container logged.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from gcp_stack import STACK, labelled, mlform

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SCRIPT = Path(__file__).parents[1] / "local" / "training" / "fixtures" / "train.py"

RESOURCES = """\
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${transactions.uri}
    entrypoint: train.py
    target: is_fraud
    exclude: [gender]
    hyperparameters: {epochs: 30, lr: 0.1}
  fraud_model:
    type: model
    artifact: ${train.artifact}
    gates:
      - metric: auc
        min: 0.6
      - fairness: demographic_parity_difference
        sensitive_column: gender
        max: 1.0
      - robustness: gaussian_noise
        noise: 0.1
        max: 0.5
  fraud_endpoint:
    type: endpoint
    variants:
      champion: {model: "${fraud_model.uri}", weight: 100}
  traffic_monitor:
    type: monitor
    endpoint: ${fraud_endpoint.id}
    reference: ${transactions.uri}
    window_rows: 200
    min_rows: 20
    schedule: 1s
"""

APPLY = ["apply", "--auto-approve", "--no-color"]


def data(n: int = 80) -> str:
    """Fraud when the amount is high; `gender` is left out of training and judged by the
    fairness gate on the held-out rows."""
    lines = ["amount,age,gender,is_fraud"]
    for i in range(n):
        amount = (i * 37) % 100
        lines.append(f"{amount},{20 + (i * 7) % 40},{'fm'[i % 2]},{int(amount > 60)}")
    return "\n".join(lines) + "\n"


def ok(args: list[str], stack: Path):
    done = mlform(args, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def outputs_of(stack: Path, name: str) -> dict:
    return json.loads(ok(["show", name, "--json"], stack).stdout)["outputs"]


@pytest.fixture(scope="module")
def stack(gcs, vertex, tmp_path_factory) -> Path:
    bucket = f"mlform-entry-{uuid.uuid4().hex[:10]}"
    gcs.create_bucket(bucket)
    directory = tmp_path_factory.mktemp("entry")
    base = STACK.format(stack="entry", project=vertex.project, region=vertex.region,
                        bucket=bucket, vertex=vertex.url, gcs=gcs.url)
    head = base[:base.index("variables:")]
    (directory / "mlform.yaml").write_text(head + "resources:\n" + RESOURCES)
    (directory / "data").mkdir()
    (directory / "data" / "transactions.csv").write_text(data())
    shutil.copy(SCRIPT, directory / "train.py")
    directory.joinpath(".bucket").write_text(bucket)
    return directory


def test_entrypoint_gates_and_a_monitor_tick(stack, gcs, vertex):
    from google.cloud.aiplatform_v1 import JobServiceClient, PredictionServiceClient

    done = ok(APPLY, stack)
    text = done.stdout + done.stderr
    assert "evaluating 3 gate(s) with a custom job" in text, text

    # (a) the script ran as a CustomJob and its model was measured on the held-out rows
    train = outputs_of(stack, "train")
    assert 0.0 <= train["metrics"]["auc"] <= 1.0, train
    jobs = list(vertex.client(JobServiceClient).list_custom_jobs(request={
        "parent": f"projects/{vertex.project}/locations/{vertex.region}",
        "filter": "labels.mlform-stack=entry"}))
    assert len(jobs) == 2, [j.display_name for j in jobs]  # training + gate evaluation

    # (b) every gate judged, the fairness and robustness ones by the evaluation job
    model = outputs_of(stack, "fraud_model")
    kinds = [g.get("kind") for g in model["gates"]]
    assert kinds == ["metric", "fairness", "robustness"], model["gates"]
    assert all(g["passed"] for g in model["gates"]), model["gates"]

    # (c) requests to the live endpoint, then one monitor tick over their log
    endpoint = outputs_of(stack, "fraud_endpoint")["url"].split("/v1/", 1)[1] \
        .removesuffix(":predict")
    predict = vertex.client(PredictionServiceClient)
    rows = [[(i * 37) % 100, 20 + (i * 7) % 40] for i in range(80)]  # the training rows
    for i in range(0, 80, 4):
        predict.predict(endpoint=endpoint, instances=rows[i:i + 4])
    watched = ok(["watch", "--once", "--no-color"], stack)
    assert "monitor traffic_monitor: ok" in watched.stdout, watched.stdout + watched.stderr
    monitor = outputs_of(stack, "traffic_monitor")
    last = monitor["last_evaluation"]  # an "ok" needs min_rows logged rows, so it read them
    assert (last["verdict"], last["drifted_features"]) == ("ok", []), monitor

    # a fairness bound no model meets (a ratio of selection rates is at most 1): the
    # evaluation job judges it and the model is refused, naming the gate
    spec = (stack / "mlform.yaml").read_text()
    (stack / "mlform.yaml").write_text(spec.replace(
        "fairness: demographic_parity_difference", "fairness: demographic_parity_ratio")
        .replace("max: 1.0", "min: 1.01"))
    refused = mlform(APPLY, stack)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert "demographic_parity_ratio" in said and "Traceback" not in said, said
    assert outputs_of(stack, "fraud_model")["version"] == model["version"]

    bucket = (stack / ".bucket").read_text()
    ok(["destroy", "--auto-approve", "--no-color"], stack)
    assert labelled(gcs, vertex, bucket, "entry") == []
