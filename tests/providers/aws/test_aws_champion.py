"""`better_than: champion` on aws: the gate evaluation job gets the artifact of the
version the `champion` alias names as a second input, and the model records the
evaluator's permutation importance. moto runs no container: the job's output is put
where the job would write it (the evaluator itself is tested in
test_aws_container_scripts.py)."""

from __future__ import annotations

import json

import pytest
from aws_stack import create, dataset_inputs, model_inputs, training_inputs, write_data
from conftest import BUCKET
from mlform.ml.gates import GateResult
from mlform.providers.aws.gates import CHAMPION_DIR, GateRunner
from moto_extensions import SCRIPT

GATE = {"metric": "auc", "better_than": "champion", "margin": 0.01}
IMPORTANCE = {"method": "permutation", "metric": "auc", "baseline": 0.9, "repeats": 5,
              "rows": 15, "features": [{"feature": "amount", "importance": 0.2, "std": 0.01},
                                       {"feature": "age", "importance": 0.0, "std": 0.0}]}


@pytest.fixture
def started(monkeypatch, client) -> list[dict]:
    """Each evaluation job started: its settings and champion artifact; the job's
    output (a passing result, and IMPORTANCE) is put where the job writes it."""
    seen: list[dict] = []
    start = GateRunner._start

    def play(self, resource, spec, name, settings, output_key, progress,
             champion_artifact=None):
        start(self, resource, spec, name, settings, output_key, progress, champion_artifact)
        seen.append({"name": name, "settings": settings, "champion": champion_artifact})
        result = GateResult("auc >= champion + 0.01", "metric", True, 0.93,
                            detail="stand-in", champion=0.9)
        client("s3").put_object(Bucket=BUCKET, Key=output_key, Body=json.dumps(
            {"format": 2, "gates": [result.to_dict()], "importance": IMPORTANCE}))

    monkeypatch.setattr(GateRunner, "_start", play)
    return seen


def test_the_evaluation_job_gets_the_champions_artifact(tmp_path, make_provider, client,
                                                        started):
    write_data(tmp_path)
    provider = make_provider()
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93, "accuracy": 0.9}}
    data = create(provider, "transactions", "dataset", dataset_inputs()).outputs["uri"]
    first = create(provider, "train", "training_job", training_inputs(data)).outputs["artifact"]
    # version 1 registers under the default aliases, `champion` among them
    v1 = create(provider, "fraud_model", "model", model_inputs(first))
    assert v1.error is None and v1.outputs["version"] == 1
    second = create(provider, "train", "training_job",
                    training_inputs(data, seed=8)).outputs["artifact"]
    assert second != first

    v2 = create(provider, "fraud_model", "model", {"artifact": second, "gates": [GATE]})
    assert v2.error is None, v2.error
    [job] = started
    assert (job["champion"], job["settings"]["champion"]) == (first, {"name": "version 1"})
    described = client("sagemaker").describe_processing_job(ProcessingJobName=job["name"])
    inputs = {i["InputName"]: i["S3Input"] for i in described["ProcessingInputs"]}
    assert (inputs["champion"]["S3Uri"], inputs["champion"]["LocalPath"]) == \
        (first, CHAMPION_DIR)
    assert inputs["model"]["S3Uri"] == second
    assert described["AppSpecification"]["ContainerEntrypoint"][-1].endswith(
        f"evaluation.json {CHAMPION_DIR}")
    assert (v2.outputs["version"], v2.outputs["gates"][0]["champion"]) == (2, 0.9)
    assert v2.outputs["importance"] == IMPORTANCE
    package = client("sagemaker").describe_model_package(ModelPackageName=v2.outputs["uri"])
    assert package["CustomerMetadataProperties"]["mlform:importance"] == \
        "amount=0.2000,age=0.0000"


def test_without_a_champion_yet_the_job_gets_no_champion(tmp_path, make_provider, client,
                                                          started):
    write_data(tmp_path)
    provider = make_provider()
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93}}
    data = create(provider, "transactions", "dataset", dataset_inputs()).outputs["uri"]
    artifact = create(provider, "train", "training_job",
                      training_inputs(data)).outputs["artifact"]
    # a version registered without the `champion` alias is no champion
    assert create(provider, "fraud_model", "model",
                  model_inputs(artifact, aliases=["staging"])).error is None
    other = create(provider, "train", "training_job",
                   training_inputs(data, seed=8)).outputs["artifact"]
    answer = create(provider, "fraud_model", "model", {"artifact": other, "gates": [GATE]})
    assert answer.error is None, answer.error
    [job] = started
    assert (job["champion"], job["settings"]["champion"]) == (None, None)
    described = client("sagemaker").describe_processing_job(ProcessingJobName=job["name"])
    assert [i["InputName"] for i in described["ProcessingInputs"]] == ["code", "model"]
