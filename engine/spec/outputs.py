"""The outputs of each resource type: one pydantic model per type, the single source of
what `${resource.attribute}` may name, each attribute's type and its meaning.

Every provider returns its outputs through these models (see `output_problems`): a
provider bug that returns a wrongly typed value, or leaves out an output it declares
it produces, is an apply error that names the provider and the attribute, not a state
that later references trip over. Keys a provider returns beyond its type's model are
its private data (a server's pid, a SageMaker ARN): kept for the provider's own calls,
out of reach of references, and never checked here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

Scalar = float | int | str | bool | None
"""A JSON scalar: what one metric may be (a training script may log any of these)."""


class Outputs(BaseModel):
    """Base of the output models: every attribute optional here, since which ones a
    resource has depends on its provider (see `mlform.engine.capabilities`)."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)


class DatasetOutputs(Outputs):
    uri: str | None = None
    """content-addressed location of this version (changes exactly when content does)"""
    version: str | None = None
    """short content digest"""
    rows: int | None = None
    """number of rows"""
    columns: list[str] | None = None
    """column names"""
    path: str | None = None
    """where the provider stored this version"""
    versions: list[dict[str, Any]] | None = None
    """every stored version (version, rows, created)"""


class FeatureViewOutputs(Outputs):
    uri: str | None = None
    """content-addressed location of the materialised offline features"""
    version: str | None = None
    """digest of the definition and the data"""
    online_store: str | None = None
    """location of the online store"""
    features: list[str] | None = None
    """feature names"""


class TrainingJobOutputs(Outputs):
    artifact: str | None = None
    """location of the trained model artifact"""
    run_id: str | None = None
    """the run's identifier"""
    metrics: dict[str, Scalar] | None = None
    """held-out metrics (accuracy, auc, ... / rmse, mae, r2)"""
    device: str | None = None
    """device the job trained on"""
    device_note: str | None = None
    """why it trained on another device than `compute` asked for (no GPU present); empty
    when it got what it asked"""
    data_version: str | None = None
    """version of the data it trained on"""
    code_digest: str | None = None
    """digest of the training code"""
    runs: list[dict[str, Any]] | None = None
    """past runs (run_id, status, metrics, created)"""
    log: str | None = None
    """path of the run's log"""


class ModelOutputs(Outputs):
    uri: str | None = None
    """the registered version's location (name and version)"""
    name: str | None = None
    """registry name"""
    version: int | None = None
    """registered version number"""
    card: str | None = None
    """location of the model card"""
    gates: list[dict[str, Any]] | None = None
    """gate results"""
    aliases: dict[str, int] | None = None
    """alias -> version"""
    pending_aliases: dict[str, int] | None = None
    """alias -> version it moves to once an endpoint's rollout of that version completes"""
    versions: list[dict[str, Any]] | None = None
    """every registered version"""


class EndpointOutputs(Outputs):
    url: str | None = None
    """base URL of the service"""
    name: str | None = None
    """service name"""
    traffic: dict[str, float] | None = None
    """traffic share per variant"""


class BatchJobOutputs(Outputs):
    output_uri: str | None = None
    """content-addressed location of the predictions"""
    rows: int | None = None
    """rows scored"""


class MonitorOutputs(Outputs):
    last_evaluation: dict[str, Any] | None = None
    """time and verdict of the most recent evaluation"""
    report: str | None = None
    """path of the latest HTML report"""
    evaluations: str | None = None
    """directory of stored evaluations"""


class RetrainingPolicyOutputs(Outputs):
    last_action: dict[str, Any] | None = None
    """what the policy last did"""
    actions: str | None = None
    """log of every decision"""


class GatewayOutputs(Outputs):
    url: str | None = None
    """the stable address clients call"""
    weights: dict[str, float] | None = None
    """share of requests per backend endpoint (by resource name), as now served"""


OUTPUT_MODELS: dict[str, type[Outputs]] = {
    "dataset": DatasetOutputs,
    "feature_view": FeatureViewOutputs,
    "training_job": TrainingJobOutputs,
    "model": ModelOutputs,
    "endpoint": EndpointOutputs,
    "batch_job": BatchJobOutputs,
    "monitor": MonitorOutputs,
    "retraining_policy": RetrainingPolicyOutputs,
    "gateway": GatewayOutputs,
}


def descriptions(rtype: str) -> dict[str, str]:
    """Attribute -> its meaning, in declaration order (what the reference docs list)."""
    model = OUTPUT_MODELS.get(rtype)
    if model is None:
        return {}
    return {name: " ".join((f.description or "").split()) for name, f in model.model_fields.items()}


def split(rtype: str, outputs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(portable, private): the attributes of the type's model, and the provider's own."""
    known = OUTPUT_MODELS[rtype].model_fields if rtype in OUTPUT_MODELS else {}
    portable = {k: v for k, v in outputs.items() if k in known}
    return portable, {k: v for k, v in outputs.items() if k not in known}


def output_problems(rtype: str, outputs: Mapping[str, Any], produced: Collection[str] | None,
                    require: bool = True) -> list[str]:
    """What is wrong with `outputs` a provider returned for a `rtype`: an attribute of
    `produced` (what the provider declares; None: it declares nothing) of the wrong type,
    or, with `require`, missing. Attributes it does not declare are its private data and
    not judged. One line each, naming the attribute; empty when they are fine."""
    from ..values import Secret, Unknown

    model = OUTPUT_MODELS.get(rtype)
    if model is None:
        return []
    judged = set(model.model_fields) if produced is None else set(produced) & set(model.model_fields)
    problems = [f"output '{name}' is missing" for name in sorted(judged)
                if require and produced is not None and name not in outputs]
    # A sensitive or not-yet-known value is opaque here; the rest must fit the model.
    checked = {k: v for k, v in outputs.items()
               if k in judged and not isinstance(v, Secret | Unknown)}
    try:
        model.model_validate(checked)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"])
            got = type(_at(checked, err["loc"])).__name__
            problems.append(f"output '{where}': {err['msg'].lower()} (got {got})")
    return problems


def _at(value: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value
