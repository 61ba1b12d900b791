"""The provider contract: a handful of idempotent verbs, each with its own request
and response type.

    check    what is wrong with a resource's desired inputs, before anything is
             planned or applied: each problem at the attribute path it concerns
    diff     what changes between recorded inputs and desired inputs, which of
             those changes force a replacement, and the outputs known at plan time
    observe  read the live resource (never changes anything); also finds a resource
             by its idempotency key, so an interrupted create can be adopted
    create   make the resource; must be idempotent for a given `idempotency_key`
    update   change it in place
    delete   remove it; deleting what is already gone succeeds
    export   the resource's content as a portable bundle; import_ creates it from one on
             another provider (a move, see `mlform.engine.moves`); `can_move` says which
             types a provider carries
    invoke   an endpoint's predictions for a batch of instances, given its recorded
             outputs (what a gateway forwards and a parity check compares); a
             provider that cannot call its endpoints answers with an error

Long-running calls report progress through `ctx.progress(...)` and may take as
long as they need; the engine records the idempotency key *before* calling
`create`, so after a crash it asks `observe(key=...)` and adopts what it finds
instead of starting a second one.

Responses carry diagnostics (`error`) rather than raising; an exception from a
provider is turned into an error by the engine all the same.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .capabilities import TypeSupport

if TYPE_CHECKING:
    from .moves.verbs import ExportRequest, ExportResponse, ImportRequest
    from .pricing.usage import UsageRequest, UsageResponse


@dataclass(frozen=True)
class ProviderContext:
    """What a provider knows about where it runs."""

    stack: str
    stack_dir: Path
    provider_name: str
    config: dict[str, Any]
    data_dir: Path
    """Directory the provider may keep its own files in (`.mlform/<provider>/`)."""


@dataclass(frozen=True)
class ResourceRef:
    """The resource a call is about."""

    name: str
    type: str
    id: str | None = None


class Progress:
    """Progress reporting for long calls; the engine wires it to its event hooks."""

    def __init__(self, sink: Callable[[str, float | None], None] | None = None):
        self._sink = sink

    def __call__(self, message: str, fraction: float | None = None) -> None:
        if self._sink:
            self._sink(message, fraction)


@dataclass(frozen=True)
class AttributeChange:
    path: str
    before: Any
    after: Any
    forces_replacement: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a resource's inputs (or a provider's configuration), where
    the user wrote it."""

    path: tuple[str | int, ...]
    """The input at fault: `("hyperparameters", "lrr")`, `("variants", "champion", "model")`,
    `("features", 1)`; `()` for the resource as a whole."""
    message: str
    """What is wrong, lowercase, identifiers quoted: `unknown hyperparameter 'lrr'`."""
    help: str = ""
    """The fix: `did you mean 'lr'?`, `write model: ${fraud_model.uri}`."""
    key: bool = False
    """Point at the key rather than its value (a misspelt name)."""

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class CheckRequest:
    """The desired inputs of one resource, checked at `validate` and at `plan`."""

    resource: ResourceRef
    inputs: dict[str, Any]
    """May contain `Unknown` values (known after apply): a check skips those, since only
    an apply will tell. May contain `Secret` values."""
    upstream: dict[str, dict[str, Any]] = field(default_factory=dict)
    """For each top-level input written as a whole reference to another resource
    (`dataset: ${transactions.uri}`), that resource's attributes as the plan knows them
    (a dataset's `columns`). Empty at `validate`, which reads no state."""


@dataclass(frozen=True)
class CheckResponse:
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class DiffRequest:
    resource: ResourceRef
    prior_inputs: dict[str, Any] | None
    """None when the resource does not exist yet."""
    prior_outputs: dict[str, Any] | None
    desired_inputs: dict[str, Any]
    """May contain `Unknown` values (known after apply) and `Secret` values."""


@dataclass(frozen=True)
class DiffResponse:
    changes: list[AttributeChange] = field(default_factory=list)
    planned_outputs: dict[str, Any] = field(default_factory=dict)
    """Outputs known at plan time (a dataset's content-addressed uri); others unknown."""
    note: str = ""
    """Why the resource must change when no input did (new data at the source)."""
    error: str | None = None

    @property
    def requires_replace(self) -> list[str]:
        return [c.path for c in self.changes if c.forces_replacement]


@dataclass(frozen=True)
class ObserveRequest:
    resource: ResourceRef
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    idempotency_key: str | None = None
    """Set when looking for a resource whose create may have been interrupted."""


@dataclass(frozen=True)
class ObserveResponse:
    exists: bool
    id: str | None = None
    inputs: dict[str, Any] | None = None
    """Live values of the inputs the provider can read back (for drift)."""
    outputs: dict[str, Any] | None = None
    healthy: bool = True
    detail: str = ""
    error: str | None = None


@dataclass(frozen=True)
class CreateRequest:
    resource: ResourceRef
    inputs: dict[str, Any]
    idempotency_key: str


@dataclass(frozen=True)
class UpdateRequest:
    resource: ResourceRef
    prior_inputs: dict[str, Any]
    prior_outputs: dict[str, Any]
    inputs: dict[str, Any]
    changes: list[AttributeChange] = field(default_factory=list)


@dataclass(frozen=True)
class DeleteRequest:
    resource: ResourceRef
    inputs: dict[str, Any]
    outputs: dict[str, Any]


class Failure(StrEnum):
    """The kind of an apply's failure, for what follows from it (an incident), so that
    nothing has to read the error's words."""

    GATE_FAILED = "gate_failed"
    """A model's gate failed: the version was not registered."""
    ROLLED_BACK = "rolled_back"
    """An endpoint's rollout was rolled back: traffic is on the previous variants."""
    PARITY_FAILED = "parity_failed"
    """A gateway's parity check failed: no traffic moved to the new endpoint."""
    FAILED_BACK = "failed_back"
    """A gateway's cutover failed back: all traffic is on the old endpoint."""


@dataclass(frozen=True)
class ApplyResponse:
    """Answer to create and update."""

    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    detail: str = ""
    failure: Failure | None = None
    """With `error`: its kind, when it is one the engine acts on (see `Failure`)."""


@dataclass(frozen=True)
class DeleteResponse:
    error: str | None = None


@dataclass(frozen=True)
class InvokeRequest:
    """Predictions from a live endpoint: `POST /predict` as its clients would call it."""

    resource: ResourceRef
    outputs: dict[str, Any]
    """The endpoint's recorded outputs (`url`, `name`, and the provider's private data)."""
    instances: list[Any]
    """Rows of features, as clients send them: `[[0.1, 3.0], ...]` or `[{"amount": 1}, ...]`."""
    timeout: float = 10.0
    """Seconds the call may take."""


@dataclass(frozen=True)
class InvokeResponse:
    predictions: list[Any] = field(default_factory=list)
    """One per instance, as the endpoint answers them (a label, or `{label, score}`)."""
    error: str | None = None
    status: int = 200
    """The endpoint's HTTP status (or the closest one): 4xx is the caller's fault."""


@dataclass(frozen=True)
class TickRequest:
    """One pass of `mlform watch` over a controller resource (monitor, policy, schedule)."""

    resource: ResourceRef
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    stack_outputs: dict[str, dict[str, Any]]
    """Outputs of every resource in state, by name (a policy reads its monitors' verdicts)."""
    stack_inputs: dict[str, dict[str, Any]]
    now: float
    decision: dict[str, Any] | None = None
    """For a retraining policy: the engine's decision on this pass (`t`, `time`, `acted`,
    `action`, `reasons`, `checks`, `held_by_cooldown_until`; see mlform.ml.retraining),
    for a provider that keeps a log of them to record. The engine decides for every
    provider: the response's `retrain` is ignored, its events and error are shown."""


@dataclass(frozen=True)
class TickResponse:
    outputs: dict[str, Any] | None = None
    """New outputs to record (a monitor's last evaluation); None leaves them as they are."""
    events: list[str] = field(default_factory=list)
    """What happened, one line each, for the person watching and the audit log."""
    breach: dict[str, Any] | None = None
    """A monitor's breach: kind (drift | performance), measured values, thresholds."""
    retrain: str | None = None
    """A policy's request: the reason to re-run its training job now."""
    error: str | None = None


class Provider(abc.ABC):
    """Base class of every provider; see the module docstring for the contract."""

    #: resource types this provider realises
    resource_types: frozenset[str] = frozenset()
    #: per resource type: the outputs it produces and the fields it does not honour,
    #: checked at `validate` and `plan` (see `mlform.engine.capabilities`); a type
    #: left out references any output and accepts every field
    capabilities: ClassVar[Mapping[str, TypeSupport]] = {}
    #: resource types this provider does not realise, each with what to do instead
    #: (`validate` and `plan` show it under the error at the resource's `provider:`)
    unsupported_types: ClassVar[Mapping[str, str]] = {}

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx

    def validate_config(self) -> list[str | Problem]:
        """Problems with the provider's configuration (empty when fine); a `Problem`'s
        path is inside the provider's block of the spec."""
        return []

    def check(self, req: CheckRequest) -> CheckResponse:
        """Problems with a resource's desired inputs that need no live state; never
        changes anything. Run by `validate` and by `plan` before `diff`."""
        return CheckResponse()

    def diff(self, req: DiffRequest) -> DiffResponse:
        """Default diff: every changed top-level input updates in place."""
        return default_diff(req)

    @abc.abstractmethod
    def observe(self, req: ObserveRequest) -> ObserveResponse: ...

    @abc.abstractmethod
    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse: ...

    @abc.abstractmethod
    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse: ...

    @abc.abstractmethod
    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse: ...

    def tick(self, req: TickRequest) -> TickResponse | None:
        """Controller hook run by `mlform watch`; None for types that have none."""
        return None

    def invoke(self, req: InvokeRequest) -> InvokeResponse:
        """An endpoint's predictions for `req.instances` (see `InvokeRequest`); a
        provider that cannot reach its endpoints from here says so."""
        return InvokeResponse(error=f"provider '{self.ctx.provider_name}' cannot invoke "
                                    f"'{req.resource.type}' resources", status=501)

    def can_move(self, rtype: str) -> bool:
        """Whether `export` and `import_` carry `rtype` resources (see `mlform.engine.moves`);
        a resource moves between two providers only when both can move its type."""
        return False

    def export(self, req: ExportRequest) -> ExportResponse:
        """The resource's content as a portable bundle (`mlform.ml.bundle`)."""
        from .moves.verbs import ExportResponse

        return ExportResponse(error=f"provider '{self.ctx.provider_name}' cannot export "
                                    f"'{req.resource.type}' resources")

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        """Create the resource from a bundle another provider exported."""
        return ApplyResponse(error=f"provider '{self.ctx.provider_name}' cannot import "
                                   f"'{req.resource.type}' resources")

    def usage(self, req: UsageRequest) -> UsageResponse | None:
        """What a resource would run or keep (instance-hours, GB-months), for the plan's
        cost estimate (`mlform.engine.pricing`); None: this provider prices nothing. Never
        calls the platform."""
        return None

    def list_owned(self) -> list[tuple[str, str]]:
        """(type, id) of everything tagged as belonging to this stack (for orphan reports)."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release clients and connections."""


def default_diff(req: DiffRequest, replace_on: frozenset[str] = frozenset(),
                 reasons: dict[str, str] | None = None) -> DiffResponse:
    """Compare inputs attribute by attribute; `replace_on` names top-level inputs whose
    change forces a replacement, with the reason for each in `reasons`."""
    from .plan.diffing import diff_values

    reasons = reasons or {}
    if req.prior_inputs is None:
        return DiffResponse()
    changes = []
    for path, before, after in diff_values(req.prior_inputs, req.desired_inputs):
        top = path.split(".")[0].split("[")[0]
        forced = top in replace_on
        changes.append(AttributeChange(path, before, after, forced,
                                       reasons.get(top, "") if forced else ""))
    return DiffResponse(changes=changes)
