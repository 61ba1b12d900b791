"""The stack format: pydantic models are the single source of its schema.

Every field that a reference may fill accepts either its own type or a `${...}`
string (`Ref[T]`); the evaluated value is checked again against `T` at plan
time. Fields that name another resource carry `x-mlform-resource` in the schema
so that the loader adds a dependency edge and checks the name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from .outputs import OUTPUT_MODELS
from .outputs import descriptions as output_descriptions

Expr = Annotated[str, StringConstraints(pattern=r"^\$\{[^}]+\}$")]
"""A string that is exactly one `${...}` reference."""

Duration = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?(ms|s|m|h|d)$")]
"""A duration such as `30s`, `5m`, `2h`, `1d`."""

ResourceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")]
"""The name of another resource in the stack (listed by `named_resources`)."""

PROVIDER_SPECIFIC = "x-mlform-provider-specific"
"""Schema marker of a field only providers of the named type understand (checked at plan,
see `mlform.engine.capabilities`)."""

T = TypeVar("T")
Ref = Union[T, Expr]  # noqa: UP007 - a generic alias: Ref[float]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True,
                              populate_by_name=True)


# --- shared meta-fields ---------------------------------------------------------

class Lifecycle(Strict):
    """Terraform's lifecycle block."""

    prevent_destroy: bool = False
    """Refuse any plan that would destroy this resource."""
    create_before_destroy: bool | None = None
    """When the resource must be replaced, create the new one before deleting the old.
    Unset, it is on for models and endpoints (what serves is replaced only once its
    successor works) and off for the other types."""
    ignore_changes: list[str] = Field(default_factory=list)
    """Attributes whose changes (in the spec or outside mlform) are not planned."""


class ResourceBase(Strict):
    """Fields every resource type has."""

    type: str
    provider: str | None = None
    """Name of the provider (a key of `providers:`); defaults to the only one, or `local`."""
    description: str | None = None
    depends_on: list[ResourceName] = Field(default_factory=list)
    """Extra dependency edges, beyond those that references make."""
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    provider_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Provider-specific knobs, keyed by provider type: `{aws: {instance_type: ml.m5.large}}`."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Labels copied onto what the provider creates."""

    def named_resources(self) -> list[tuple[tuple, str]]:
        """(path, name) of every field that names another resource by plain name."""
        return [(("depends_on", i), n) for i, n in enumerate(self.depends_on)]


class Compute(Strict):
    """Portable compute request; providers map it to their instance types."""

    cpus: Ref[int] | None = None
    memory_gb: Ref[float] | None = None
    gpus: Ref[int] = 0
    """GPUs wanted; the local provider uses one when present and says so when none is."""
    instances: Ref[int] = 1


# --- dataset --------------------------------------------------------------------

class ColumnSchema(Strict):
    type: Literal["int", "float", "string", "bool", "datetime", "category"]
    nullable: bool = True
    allowed: list[Any] | None = None
    """Allowed values (categorical columns)."""
    min: Ref[float] | None = None
    max: Ref[float] | None = None


class QualityRules(Strict):
    min_rows: Ref[int] | None = None
    max_rows: Ref[int] | None = None
    max_null_fraction: Ref[float] | dict[str, Ref[float]] | None = None
    """One bound for every column, or per column."""
    unique: list[str] = Field(default_factory=list)
    """Columns whose values must not repeat."""


class Dataset(ResourceBase):
    """A versioned table; its `uri` changes exactly when its content changes."""

    type: Literal["dataset"]
    source: Ref[str]
    """Path (relative to the stack) or URL of a CSV or Parquet file."""
    format: Literal["csv", "parquet"] | None = None
    """Inferred from the file extension when absent."""
    columns: dict[str, ColumnSchema] = Field(default_factory=dict)
    """Declared schema, checked at apply."""
    quality: QualityRules = Field(default_factory=QualityRules)


# --- feature_view ---------------------------------------------------------------

class DerivedFeature(Strict):
    name: str
    expr: str
    """A pandas expression over the dataset's columns, e.g. `amount / balance`."""


class FeatureView(ResourceBase):
    """Named features over a dataset, materialised offline and online."""

    type: Literal["feature_view"]
    dataset: Ref[str]
    entity: str
    """Entity key column."""
    timestamp: str
    """Event time column."""
    features: list[str | DerivedFeature]
    ttl: Duration | None = None
    """How long a feature value stays valid for point-in-time joins and online lookups."""
    online: bool = True


# --- training_job ---------------------------------------------------------------

class TrainingJob(ResourceBase):
    """Training run; re-runs exactly when data, code, algorithm, hyperparameters or seed change."""

    type: Literal["training_job"]
    dataset: Ref[str] | None = None
    """A dataset's `uri`."""
    feature_view: Ref[str] | None = None
    """A feature view's `uri`, instead of a raw dataset."""
    labels: Ref[str] | None = None
    """With `feature_view`: a dataset of entity, timestamp and target rows to join features onto."""
    algorithm: Literal["mlp_classifier", "mlp_regressor", "logistic_regression",
                       "linear_regression"] | None = None
    """Built-in trainer."""
    entrypoint: str | None = None
    """Custom training script (relative to the stack); see docs/training-scripts.md."""
    target: str
    features: list[str] | None = None
    """Feature columns; default every column but the target and `exclude`."""
    exclude: list[str] = Field(default_factory=list)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    seed: Ref[int] = 0
    test_size: Ref[float] = 0.2
    """Held-out fraction used for metrics and gates."""
    compute: Compute = Field(default_factory=Compute)
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TrainingJob:
        if (self.algorithm is None) == (self.entrypoint is None):
            raise ValueError("set exactly one of 'algorithm' (a built-in trainer) or "
                             "'entrypoint' (your training script)")
        if (self.dataset is None) == (self.feature_view is None):
            raise ValueError("set exactly one of 'dataset' or 'feature_view'")
        return self


# --- model ----------------------------------------------------------------------

class Costs(Strict):
    """What each mistake of a binary classifier costs, in any one unit (money, minutes)."""

    false_positive: Ref[float] = Field(ge=0)
    """Cost of predicting the positive class (the second class) for a negative row."""
    false_negative: Ref[float] = Field(ge=0)
    """Cost of predicting the negative class for a positive row."""


class Gate(Strict):
    """One evaluation gate. Exactly one of `metric`, `fairness`, `robustness`, `cost`."""

    metric: str | None = None
    """Held-out metric: accuracy, auc, f1, log_loss, rmse, mae, r2."""
    fairness: Literal["demographic_parity_difference", "demographic_parity_ratio",
                      "equalized_odds_difference", "four_fifths_rule"] | None = None
    robustness: Literal["gaussian_noise"] | None = None
    sensitive_column: str | None = None
    """For fairness gates: the column that defines groups."""
    noise: Ref[float] = 0.1
    """For robustness gates: noise standard deviation, in units of each feature's std."""
    robustness_metric: str | None = None
    """For robustness gates: metric whose drop is bounded (default the job's main metric)."""
    cost: Costs | None = None
    """Business-outcome gate of a binary classifier: the expected cost per held-out row
    at the decision threshold that minimises it (bound it with `max`); the threshold
    and the costs are reported in the model card."""
    better_than: Literal["champion"] | None = None
    """With `metric` or `cost`: compare the candidate with the model's current champion
    on the same held-out rows; it passes when at least as good as the champion by
    `margin` (and within `min`/`max`, when given). No champion yet: it passes."""
    margin: Ref[float] = 0.0
    """For `better_than`: how much better than the champion the candidate must be (in
    the metric's or the cost's own unit; 0: not worse)."""
    min: Ref[float] | None = None
    max: Ref[float] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Gate:
        kinds = [k for k in ("metric", "fairness", "robustness", "cost") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a gate has exactly one of 'metric', 'fairness', 'robustness' "
                             "or 'cost'")
        if self.fairness and not self.sensitive_column:
            raise ValueError("a fairness gate needs 'sensitive_column'")
        if self.better_than and not (self.metric or self.cost):
            raise ValueError("'better_than' compares a 'metric' or a 'cost' with the champion")
        if self.fairness != "four_fifths_rule" and self.min is None and self.max is None \
                and not self.better_than:
            raise ValueError("a gate needs a 'min' or a 'max' threshold (or 'better_than: "
                             "champion')")
        return self


class Retirement(Strict):
    keep_last: int | None = None
    """Keep this many newest versions; older unused ones are retired."""
    retire_after: Duration | None = None
    """Retire unused versions older than this."""


class OnMove(Strict):
    """What a model does when its provider changes and it moves (docs/migration.md)."""

    rerun_gates: bool = False
    """Judge the gates again on the new provider instead of registering the model there
    with the gate results recorded where it was."""


class ModelSource(Strict):
    """A model file made outside mlform, registered instead of a training job's artifact
    once its gates pass on `dataset` (see docs/ml-depth.md, "Bring your own model")."""

    path: Ref[str]
    """The file, relative to the stack: a `torch.export` program (.pt2), TorchScript
    (.pt), ONNX (.onnx) or a scikit-learn estimator or pipeline saved with joblib or
    pickle (.joblib, .pkl; loading it runs code: only files you trust). Its content is
    versioned: a changed file plans an update that registers a new version."""
    format: Literal["torch_export", "torchscript", "onnx", "sklearn"] | None = None
    """Inferred from the file extension when absent."""
    dataset: Ref[str]
    """A dataset's `uri`: every row of it is what the gates, the metrics and the model
    card judge the model on (and what monitors compare traffic with)."""
    target: str
    """The dataset's column the model predicts."""
    features: list[str] | None = None
    """The model's input columns, in the order it takes them; default the names a
    scikit-learn model was fitted with, else every column of the dataset but the target."""
    task: Literal["classification", "regression"] | None = None
    """Default: told by the model where it can (a scikit-learn estimator, an ONNX model
    with a label output); required for torch models and single-output ONNX models."""
    classes: list[Any] | None = None
    """Class labels in the order of the model's outputs; default the classifier's own,
    else the sorted values of the target column."""


class Model(ResourceBase):
    """A registered model: versions, aliases, gates, a model card."""

    type: Literal["model"]
    artifact: Ref[str] | None = None
    """A training job's `artifact`. Set this or `source`."""
    source: ModelSource | None = None
    """Bring your own model: a model file to register instead of a training job's artifact."""
    name: str | None = None
    """Registry name; defaults to the resource name."""
    gates: list[Gate] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=lambda: ["champion"])
    """Aliases moved to each newly registered version."""
    owner: str | None = None
    intended_use: str | None = None
    retirement: Retirement = Field(default_factory=Retirement)
    on_move: OnMove = Field(default_factory=OnMove)
    """When the model's provider changes: it moves, registered on the new provider from
    the copied artifact with its recorded gate results, unless `rerun_gates` is set."""

    @model_validator(mode="after")
    def _one_artifact(self) -> Model:
        if (self.artifact is None) == (self.source is None):
            raise ValueError("set exactly one of 'artifact' (a training job's, such as "
                             "'${train.artifact}') or 'source' (a model file: {path: "
                             "model.onnx, dataset: ${data.uri}, target: label})")
        return self


# --- endpoint -------------------------------------------------------------------

class Variant(Strict):
    model: Ref[str]
    """A model's `uri` (a specific version)."""
    weight: Ref[int] = 100
    shadow: bool = False
    """Receives a copy of traffic; its answers are logged, not returned."""


class Rollout(Strict):
    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    steps: list[int] = Field(default_factory=lambda: [10, 50, 100])
    """Canary: percentages of traffic on the new version, in order."""
    step_percent: int = 25
    """Linear: traffic moved per step."""
    wait: Duration = "5s"
    """Time at each step before checking rollback conditions."""


class Rollback(Strict):
    max_error_rate: Ref[float] | None = 0.05
    """Errors the new variants caused (not requests refused as the client's fault) per
    request they answered."""
    max_p99_latency_ms: Ref[float] | None = None
    min_requests: int = Field(default=20, ge=0)
    """Requests the new variants must answer at each step before it is judged; a step
    waits for them up to `evidence_timeout`. `0` promotes without evidence."""
    evidence_timeout: Duration = "2m"
    """How long a step waits, beyond `rollout.wait`, for `min_requests` requests."""
    on_inconclusive: Literal["rollback", "hold"] = "rollback"
    """When a step has too few requests by `evidence_timeout`: `rollback` moves traffic
    back to the old variants; `hold` keeps the split for the next apply to resume.
    Either fails the apply."""
    on_health_check_failure: bool = True


class RequestLogging(Strict):
    sample_rate: float = 1.0
    """Share of answered requests written to the request log monitors read."""
    max_rows: int = 100_000
    """Requests the current log file holds before it rolls over (the previous file is
    kept, so between one and two times this is on disk)."""
    max_bytes: ByteSize = ByteSize(256 * 2**20)
    """Size the current log file reaches before it rolls over, whichever of the two
    bounds comes first: a number of bytes or a size such as `64MiB` or `1GB`."""


class EndpointLimits(Strict):
    """Bounds on what one client may send or hold open (local provider)."""

    max_body_bytes: ByteSize = ByteSize(8 * 2**20)
    """A larger request body is refused with 413."""
    max_header_bytes: ByteSize = ByteSize(16 * 2**10)
    """A larger request line and headers are refused with 431."""
    header_timeout: Duration = "10s"
    """Time a request's line and headers have to arrive (slow clients get 408)."""
    body_timeout: Duration = "30s"
    """Time a request's body has to arrive once its headers did (408)."""
    idle_timeout: Duration = "5s"
    """Time a kept-alive connection may stay idle between requests."""


class Experiment(Strict):
    """An A/B experiment between an endpoint's variants: each request with a key is
    answered by the variant its key is assigned to (the same key always gets the same
    variant, across restarts and replicas), and outcomes from `/feedback` decide which
    variant is better (`mlform experiment` shows the verdict)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Names the experiment; assignment hashes it with the key, so a new name (a new
    experiment) reshuffles who gets which variant, and starts a new verdict."""
    key: str = "key"
    """The request body's field whose value assigns the variant (`{"instances": [...],
    "user_id": "u-42"}` with `key: user_id`). A request without it gets a variant at
    random by weight: it still counts (assignment is random either way), but is not
    sticky."""
    control: str | None = None
    """The variant the others are compared with; default the first variant."""
    metric: Literal["accuracy", "outcome"] = "accuracy"
    """`accuracy`: each labelled instance from `/feedback` `{"id", "labels"}` is right
    or wrong; `outcome`: the business value sent with the feedback `{"id", "outcome":
    12.5}` (revenue per request, say), higher is better."""
    test: Literal["fixed_horizon", "sequential"] = "fixed_horizon"
    """`fixed_horizon`: a sample size per variant is fixed from `baseline`, `mde`,
    `alpha` and `power`, and one z-test at that size decides (looking earlier decides
    nothing); `sequential`: the mixture sequential probability ratio test, whose
    p-value is valid at every look, so it may stop as soon as it is decided."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """False-positive rate of the verdict (split between challengers when several)."""
    power: float = Field(default=0.8, gt=0, lt=1)
    """Fixed horizon: chance of finding a true difference of `mde`."""
    mde: float = Field(default=0.05, gt=0)
    """The smallest difference worth finding, in the metric's unit (0.05: five points
    of accuracy)."""
    baseline: float | None = Field(default=None, gt=0, lt=1)
    """Fixed horizon, accuracy: the control's expected accuracy, for the sample size;
    unset, 0.5 (the largest sample any baseline needs)."""
    promote_winner: bool = False
    """Once the verdict names a winner, `mlform watch` (and `mlform experiment`) rolls
    all traffic onto it through the endpoint's rollout; plans show the winner's weight
    as 100 and the others' as 0 from then on."""


class Endpoint(ResourceBase):
    """An online prediction service with variants, canary rollouts and rollback."""

    type: Literal["endpoint"]
    variants: dict[str, Variant]
    rollout: Rollout = Field(default_factory=Rollout)
    rollback: Rollback = Field(default_factory=Rollback)
    port: Ref[int] | None = Field(default=None, json_schema_extra={PROVIDER_SPECIFIC: "local"})
    """Local provider: fixed port; default chosen free. Another provider refuses it at plan."""
    feature_view: Ref[str] | None = None
    """Look features up by entity key from this feature view's online store."""
    compute: Compute = Field(default_factory=Compute)
    logging: RequestLogging = Field(default_factory=RequestLogging)
    limits: EndpointLimits = Field(default_factory=EndpointLimits)
    experiment: Experiment | None = None
    """An A/B experiment between the variants (sticky assignment by a request key)."""

    @model_validator(mode="after")
    def _weights(self) -> Endpoint:
        if not self.variants:
            raise ValueError("an endpoint needs at least one variant")
        if self.experiment:
            live = [n for n, v in self.variants.items() if not v.shadow]
            if len(live) < 2:
                raise ValueError("an experiment needs at least two variants that are not "
                                 "shadows")
            if self.experiment.control and self.experiment.control not in live:
                raise ValueError(f"experiment.control '{self.experiment.control}' is not one "
                                 f"of the variants {', '.join(live)}")
        return self


# --- batch_job ------------------------------------------------------------------

class BatchJob(ResourceBase):
    """Scores a dataset with a model version."""

    type: Literal["batch_job"]
    model: Ref[str]
    dataset: Ref[str] | None = None
    feature_view: Ref[str] | None = None
    schedule: Duration | None = None
    """Re-run by `mlform watch` at this interval when inputs changed."""
    chunk_rows: int = 100_000


# --- monitor --------------------------------------------------------------------

class DriftThresholds(Strict):
    wasserstein: float = 0.1
    psi: float = 0.2
    ks: float = 0.05
    """p-value below which the KS test reports drift."""
    jensenshannon: float = 0.1
    chisquare: float = 0.05
    """p-value below which the chi-square test reports drift."""


class PerformanceCheck(Strict):
    metric: str
    min: Ref[float] | None = None
    max: Ref[float] | None = None


class Monitor(ResourceBase):
    """Compares recent traffic, or a batch job's output, with the reference data."""

    type: Literal["monitor"]
    endpoint: Ref[str] | None = None
    """An endpoint's `id`."""
    batch_job: Ref[str] | None = None
    """A batch job's `output_uri` (re-evaluated when it changes), or its `id` (its newest output)."""
    reference: Ref[str]
    """A dataset's `uri` whose profile is the reference."""
    features: list[str] | None = None
    numeric_method: Literal["wasserstein", "psi", "ks"] = "wasserstein"
    categorical_method: Literal["jensenshannon", "chisquare"] = "jensenshannon"
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    drift_share: float = 0.5
    """Dataset drift is declared when this share of features drift."""
    window_rows: int = 1000
    min_rows: int = 100
    performance: PerformanceCheck | None = None
    schedule: Duration = "1h"

    @model_validator(mode="after")
    def _one_subject(self) -> Monitor:
        if (self.endpoint is None) == (self.batch_job is None):
            raise ValueError("set one of 'endpoint' (an endpoint's id, such as "
                             "'${fraud_endpoint.id}') or 'batch_job' (a batch job's output "
                             "uri, such as '${score.output_uri}')")
        return self


# --- retraining_policy ----------------------------------------------------------

class Trigger(Strict):
    monitor: ResourceName | None = None
    on: Literal["drift", "performance", "any"] = "any"
    schedule: Duration | None = None
    new_data: ResourceName | None = None
    """A dataset resource: retrain when its source's content changes."""

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if sum(x is not None for x in (self.monitor, self.schedule, self.new_data)) != 1:
            raise ValueError("a trigger has exactly one of 'monitor', 'schedule' or 'new_data'")
        return self


class RetrainingPolicy(ResourceBase):
    """When to retrain, and how far to take the new model."""

    type: Literal["retraining_policy"]
    training_job: ResourceName
    model: ResourceName | None = None
    endpoint: ResourceName | None = None
    triggers: list[Trigger]
    action: Literal["retrain", "retrain_and_deploy", "record_only"] = "retrain_and_deploy"
    cooldown: Duration = "1h"
    """Minimum time between two retrains."""

    def named_resources(self) -> list[tuple[tuple, str]]:
        out = super().named_resources()
        for field in ("training_job", "model", "endpoint"):
            if getattr(self, field):
                out.append(((field,), getattr(self, field)))
        for i, trig in enumerate(self.triggers):
            for field in ("monitor", "new_data"):
                if getattr(trig, field):
                    out.append((("triggers", i, field), getattr(trig, field)))
        return out


# --- gateway --------------------------------------------------------------------

class GatewayRoute(Strict):
    """One backend of a gateway and its share of the requests."""

    endpoint: str
    """The endpoint, as a reference to its url: `${fraud_endpoint.url}`. The engine
    gives the gateway that endpoint's provider, outputs and rollout settings."""
    weight: Ref[int] = 100
    """Relative share of the requests (weights need not add up to 100)."""


class Parity(Strict):
    """What must hold before a gateway moves any traffic from one endpoint to another:
    both answer the model's held-out rows and a sample of the requests the gateway
    recently forwarded, and their answers are compared."""

    min_label_agreement: Ref[float] | None = 1.0
    """Least share of rows on which both sides predict the same label."""
    max_score_difference: Ref[float] | None = None
    """Largest difference of the two sides' scores on any row (scored models only)."""
    sample: int = Field(default=200, ge=1)
    """Rows compared at most: held-out rows first, then recently forwarded requests."""
    holdout: Ref[str] | None = None
    """Where the held-out rows are: a training job's artifact (`${train.artifact}`; its
    held-out rows are kept beside it) or a csv/parquet file; unset, only forwarded
    requests are compared."""


class Gateway(ResourceBase):
    """A stable address in front of one or more endpoints, on any providers, with
    weights; a change of backend moves traffic by the new endpoint's rollout, after a
    parity check, and moves it all back on a breach."""

    type: Literal["gateway"]
    routes: list[GatewayRoute] = Field(min_length=1)
    parity: Parity = Field(default_factory=Parity)
    soak: Duration = "0s"
    """After the last step of a cutover, how long the new side carries all traffic, judged
    by its endpoint's `rollback`, before the apply goes on (and deletes the old side)."""
    port: Ref[int] | None = Field(default=None, json_schema_extra={PROVIDER_SPECIFIC: "local"})
    """Local provider: fixed port; default chosen free and kept across restarts."""


RESOURCE_TYPES: dict[str, type[ResourceBase]] = {
    "dataset": Dataset,
    "feature_view": FeatureView,
    "training_job": TrainingJob,
    "model": Model,
    "endpoint": Endpoint,
    "batch_job": BatchJob,
    "monitor": Monitor,
    "retraining_policy": RetrainingPolicy,
    "gateway": Gateway,
}

AnyResource = Annotated[
    Dataset | FeatureView | TrainingJob | Model | Endpoint | BatchJob | Monitor
    | RetrainingPolicy | Gateway,
    Field(discriminator="type"),
]


# --- the stack file -------------------------------------------------------------

class Variable(Strict):
    type: Literal["string", "number", "integer", "bool", "list", "map", "any"] = "any"
    default: Any = None
    description: str | None = None
    sensitive: bool = False


class Output(Strict):
    value: Any
    description: str | None = None
    sensitive: bool = False


class Backend(Strict):
    model_config = ConfigDict(extra="allow")
    type: Literal["local", "s3", "gcs", "azureblob"] = "local"
    path: str | None = None
    """Local backend: state file path (default `.mlform/state.json`)."""
    bucket: str | None = None
    """S3 and GCS backends: the bucket that holds the state."""
    key: str | None = None
    """S3 backend: the state object's key; Azure Blob backend: the state blob's name."""
    prefix: str | None = None
    """GCS backend: the folder in the bucket; the state is `<prefix>/state.json`."""
    region: str | None = None
    endpoint_url: str | None = None
    """S3 and GCS backends: another API endpoint (an emulator, a private endpoint)."""
    storage_account: str | None = None
    """Azure Blob backend: the storage account that holds the state."""
    container: str | None = None
    """Azure Blob backend: the blob container that holds the state (not created by mlform)."""
    account_url: str | None = None
    """Azure Blob backend: the account's blob endpoint, for emulators
    (`http://127.0.0.1:10000/devstoreaccount1`) and sovereign clouds; default
    `https://<storage_account>.blob.core.windows.net`."""

    @model_validator(mode="after")
    def _gcs_fields(self) -> Backend:
        if self.type == "gcs" and not self.bucket:
            raise ValueError("the gcs backend needs 'bucket' (and a 'prefix' per stack): "
                             "backend: {type: gcs, bucket: my-bucket, prefix: stacks/fraud}")
        if self.type == "gcs" and self.key is not None:
            raise ValueError("the gcs backend takes 'prefix', not 'key': the state is "
                             "'<prefix>/state.json'")
        problem = _azureblob_problem(self) if self.type == "azureblob" else None
        if problem:
            raise ValueError(problem)
        return self


def _azureblob_problem(cfg: Backend) -> str | None:
    """What is wrong with an azureblob `backend:`, if anything (the service's naming rules)."""
    example = ("backend: {type: azureblob, storage_account: mystate, container: tfstate, "
               "key: stacks/fraud/state.json}")
    if not cfg.storage_account or not cfg.container or not (cfg.key or "").strip("/"):
        return f"the azureblob backend needs 'storage_account', 'container' and 'key': {example}"
    for field, instead in (("bucket", "container"), ("prefix", "key"),
                           ("endpoint_url", "account_url")):
        if getattr(cfg, field) is not None:
            return f"the azureblob backend takes '{instead}', not '{field}'"
    if not re.fullmatch(r"[a-z0-9]{3,24}", cfg.storage_account):
        return (f"'{cfg.storage_account}' is not a storage account name: 3 to 24 lowercase "
                "letters and digits")
    if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", cfg.container):
        return (f"'{cfg.container}' is not a container name: 3 to 63 lowercase letters, digits "
                "and single hyphens, starting and ending with a letter or digit")
    if (cfg.key or "").endswith("/"):
        return f"'key' names the state blob, not a folder: '{cfg.key}state.json'"
    url = cfg.account_url
    if url is not None and (not re.match(r"https?://[^/?#]+", url) or "?" in url):
        return (f"'account_url' must be the account's blob endpoint, with no SAS token "
                f"(credentials come from the environment), not '{url}'")
    return None


def _only_local() -> dict[str, ProviderConfig | None]:
    """The providers of a stack that names none: the local one, with its defaults."""
    return {"local": None}


class ProviderConfig(BaseModel):
    """Provider settings; fields beyond `type` are the provider's own."""

    model_config = ConfigDict(extra="allow")
    type: str | None = None
    """Provider type; defaults to the key."""


class PolicyRule(Strict):
    """A rule every plan must satisfy: a CEL expression that is true of each resource of
    `resource_types` (see docs/policies.md for what it can read)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Unique among the rules a plan is checked against: `endpoint-rollback-conditions`."""
    description: str = ""
    severity: Literal["advisory", "mandatory"] = "mandatory"
    """`mandatory`: a failure fails `plan` (exit 1) and `apply`; `advisory`: a warning."""
    resource_types: list[str] = Field(default_factory=list)
    """The types it judges (`endpoint`, `model`, ...); empty: every resource."""
    condition: str
    """CEL expression that must be true: `size(resource.gates) > 0`."""
    message: str
    """What is wrong when it is false, shown with the resource and its place in the spec."""


class PolicyEnable(Strict):
    """A shipped default policy turned on, with its severity changed."""

    name: str
    severity: Literal["advisory", "mandatory"] | None = None


class Policies(Strict):
    """Policy checks at plan: shipped defaults turned on by name, parameters, rule files
    and rules of the stack's own. A policy file (`--policy`, `MLFORM_POLICY_PATH`) has
    the same fields."""

    enable: list[str | PolicyEnable] = Field(default_factory=list)
    """Default policies to turn on (docs/policies.md lists them), by name or as
    `{name, severity}`."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Values the rules read as `params.NAME`: `{max_gpus_per_job: 8}`."""
    files: list[str] = Field(default_factory=list)
    """Policy files or folders of them (`*.yaml`), relative to this file."""
    rules: list[PolicyRule] = Field(default_factory=list)


class MlflowTracking(Strict):
    """An MLflow tracking server that every training run and model registration of the
    stack is logged to (docs/ml-depth.md, "Experiment tracking")."""

    uri: str | None = None
    """The tracking server's URI (`http://mlflow.internal:5000`, `databricks`); default
    the `MLFLOW_TRACKING_URI` environment variable."""
    experiment: str | None = None
    """The experiment runs are logged to, created when missing; default the stack's name."""


class Tracking(Strict):
    """Where runs are logged besides mlform's own state."""

    mlflow: MlflowTracking | None = None


class StackFile(Strict):
    """`mlform.yaml`."""

    version: Literal[1] = 1
    stack: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    """Stack name; prefixes what providers create."""
    include: list[str] = Field(default_factory=list)
    backend: Backend = Field(default_factory=Backend)
    providers: dict[str, ProviderConfig | None] = Field(default_factory=_only_local)
    variables: dict[str, Variable] = Field(default_factory=dict)
    resources: dict[str, AnyResource] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)
    policies: Policies = Field(default_factory=Policies)
    """Policy checks every plan of this stack must pass (see docs/policies.md)."""
    tracking: Tracking = Field(default_factory=Tracking)
    """Experiment tracking: `tracking: {mlflow: {uri: http://127.0.0.1:5000}}`."""


class IncludedFile(Strict):
    """A file pulled in by `include:`: the same sections, without `stack` and `backend`."""

    providers: dict[str, ProviderConfig | None] = Field(default_factory=dict)
    variables: dict[str, Variable] = Field(default_factory=dict)
    resources: dict[str, AnyResource] = Field(default_factory=dict)
    outputs: dict[str, Output] = Field(default_factory=dict)


RESOURCE_OUTPUTS: dict[str, dict[str, str]] = {rtype: output_descriptions(rtype)
                                               for rtype in OUTPUT_MODELS}
"""Attributes each resource type exposes to references, besides `id`."""
