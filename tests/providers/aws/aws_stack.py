"""The contract's example stack as the aws provider receives it: inputs per resource."""

from __future__ import annotations

from pathlib import Path

from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    ObserveRequest,
    Progress,
    ResourceRef,
    UpdateRequest,
)

TRAINED_MODEL_STACK = """\
version: 1
stack: fraud
providers:
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
"""
"""A stack file on the aws provider, data to model, for `str.format(region=, role=,
bucket=, url=)`; tests append the resources they are about."""

CSV = "amount,age,gender,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{'fm'[i % 2]},{int(i % 7 == 0)}\n" for i in range(60))


def write_data(stack_dir: Path, text: str = CSV) -> None:
    (stack_dir / "data").mkdir(exist_ok=True)
    (stack_dir / "data" / "transactions.csv").write_text(text)


def dataset_inputs() -> dict:
    return {"source": "data/transactions.csv"}


def training_inputs(dataset_uri: str, **more) -> dict:
    return {"dataset": dataset_uri, "algorithm": "mlp_classifier", "target": "is_fraud",
            "hyperparameters": {"epochs": 5, "lr": 0.01}, **more}


def model_inputs(artifact: str, min_auc: float = 0.85, **more) -> dict:
    return {"artifact": artifact, "gates": [{"metric": "auc", "min": min_auc}], **more}


def endpoint_inputs(model_uri: str, **more) -> dict:
    return {"variants": {"champion": {"model": model_uri, "weight": 100}},
            "rollout": {"strategy": "canary", "steps": [10, 50, 100], "wait": "5s"}, **more}


class Recorder(Progress):
    """Progress that keeps its messages, to show what a long call went through."""

    def __init__(self):
        self.messages: list[str] = []
        super().__init__(lambda message, fraction: self.messages.append(message))


def create(provider, name: str, rtype: str, inputs: dict):
    return provider.create(CreateRequest(ResourceRef(name, rtype), inputs, f"key-{name}"),
                           Recorder())


def update(provider, name: str, rtype: str, before: dict, outputs: dict, after: dict):
    return provider.update(UpdateRequest(ResourceRef(name, rtype), before, outputs, after),
                           Recorder())


def observe(provider, name: str, rtype: str, inputs: dict, outputs: dict | None):
    return provider.observe(ObserveRequest(ResourceRef(name, rtype), inputs, outputs))


def delete(provider, name: str, rtype: str, inputs: dict, outputs: dict):
    return provider.delete(DeleteRequest(ResourceRef(name, rtype), inputs, outputs),
                           Recorder())
