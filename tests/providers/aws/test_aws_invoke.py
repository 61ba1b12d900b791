"""The aws provider's `invoke`: InvokeEndpoint through sagemaker-runtime, against moto
extended to run the endpoint's model from its S3 artifact as SageMaker's container does
(`moto_extensions`), so that the predictions are the model's own."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from conftest import BUCKET, ROLE
from mlform.engine.provider import InvokeRequest, ResourceRef

META = {"task": "classification", "features": ["amount", "age"], "target": "is_fraud",
        "classes": [0, 1], "preprocessing": {
            "amount": {"kind": "numeric", "mean": 10.0, "std": 5.0},
            "age": {"kind": "numeric", "mean": 40.0, "std": 10.0}}}
ROWS = [[1.0, 20.0], [30.0, 70.0], [10.0, 40.0], [-5.0, 90.0]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    import torch
    from mlform.ml.artifact import save_model

    torch.manual_seed(3)
    return save_model(tmp_path_factory.mktemp("model"), torch.nn.Linear(2, 1), META)


def serve(client, model_dir: Path, name: str = "fraud-ep") -> str:
    """The artifact as SageMaker keeps it (model.tar.gz) behind a live endpoint."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    client("s3").put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=raw.getvalue())
    sm = client("sagemaker")
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "pytorch-inference", "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
        "VariantName": "champion", "ModelName": f"{name}-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return name


def invoke(provider, name: str, rows):
    return provider.invoke(InvokeRequest(ResourceRef("fraud_endpoint", "endpoint", name),
                                         {"name": name}, rows))


def test_invoke_answers_with_the_models_own_predictions(client, make_provider, model_dir):
    from mlform.ml.artifact import load_predictor

    name = serve(client, model_dir)
    answer = invoke(make_provider(), name, ROWS)
    assert answer.error is None
    assert answer.predictions == load_predictor(model_dir).predict(ROWS)


def test_invoke_says_what_failed(client, make_provider, model_dir):
    provider = make_provider()
    gone = invoke(provider, "no-such-endpoint", ROWS)
    assert gone.status == 400 and "Endpoint no-such-endpoint" in gone.error
    name = serve(client, model_dir, "short-ep")
    bad = invoke(provider, name, [[1.0]])
    assert bad.status >= 400 and bad.predictions == [] and bad.error
