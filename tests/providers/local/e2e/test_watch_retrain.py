"""A monitor and a retraining policy through `mlform watch --once`, on the
drift-retrain example's stack: traffic like the training data is no drift; shifted
traffic with new labelled data is drift, an incident, a retrain that passes its
gates, and a canary rollout that leaves version 2 serving."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import httpx
import pytest

from .conftest import destroy_and_check, health, mlform_ok, output, write_fraud_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "drift-retrain" / "mlform.yaml"


@pytest.fixture(scope="module")
def watched_stack(tmp_path_factory, run_mlform):
    directory = tmp_path_factory.mktemp("drift")
    # the canary's evidence is not the point here (nothing sends traffic while `watch`
    # rolls out): say so explicitly rather than wait for requests that never come
    spec = EXAMPLE.read_text().replace("epochs: 5", "epochs: 3").replace(
        "wait: 1s", "wait: 200ms").replace("max_error_rate: 0.01",
                                           "max_error_rate: 0.01\n      min_requests: 0")
    assert "epochs: 3" in spec and "wait: 200ms" in spec and "min_requests: 0" in spec, \
        "the example's spec changed"
    (directory / "mlform.yaml").write_text(spec)
    write_fraud_data(directory, seed=7)
    try:
        mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], directory, timeout=300)
        yield directory
    finally:
        destroy_and_check(run_mlform, directory)


def send_rows(url: str, path: Path, batch: int = 20) -> None:
    with path.open() as f:
        reader = csv.reader(f)
        next(reader)
        instances = [[float(x) for x in row[:-1]] for row in reader]
    with httpx.Client(timeout=10.0) as client:
        for i in range(0, len(instances), batch):
            r = client.post(f"{url}/predict", json={"instances": instances[i:i + batch]})
            assert r.status_code == 200, r.text
    time.sleep(1.2)  # the server writes its request log every half second


def test_traffic_like_the_training_data_is_no_drift(watched_stack, run_mlform):
    url = output(run_mlform, watched_stack, "url")
    send_rows(url, write_fraud_data(watched_stack, seed=99, rows=300, name="normal.csv"))

    watched = mlform_ok(run_mlform, ["watch", "--once", "--no-color"], watched_stack)

    assert "monitor traffic_monitor: ok" in watched.stdout, watched.stdout
    assert "retraining" not in watched.stdout
    assert "No unresolved incidents." in mlform_ok(run_mlform, ["incidents", "list"],
                                                   watched_stack).stdout


def test_shifted_traffic_retrains_and_rolls_out_version_2(watched_stack, run_mlform):
    url = output(run_mlform, watched_stack, "url")
    send_rows(url, write_fraud_data(watched_stack, seed=100, rows=300, shift=1.5,
                                    name="shifted.csv"))
    fresh = write_fraud_data(watched_stack, seed=101, rows=1500, shift=1.5, name="fresh.csv")
    with (watched_stack / "data" / "transactions.csv").open("a") as data:
        data.write("".join(fresh.read_text().splitlines(keepends=True)[1:]))

    watched = mlform_ok(run_mlform, ["watch", "--once", "--no-color"], watched_stack,
                        timeout=300)

    text = watched.stdout + watched.stderr
    assert "monitor traffic_monitor: drift" in text, text
    assert "fraud_model: registered version 2" in text, text
    assert "fraud_endpoint: moving traffic by canary" in text, text
    assert "retrain rolled out" in text, text
    incidents = mlform_ok(run_mlform, ["incidents", "list"], watched_stack).stdout
    assert "drift_breach" in incidents and "traffic_monitor" in incidents, incidents
    body = health(url)
    assert body["canary"] is None
    assert body["variants"]["champion"]["model"] == "local://models/fraud_model/2"
