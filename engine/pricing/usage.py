"""What a resource would run or keep, in billable units: instance-hours and GB-months.

Providers answer `Provider.usage` with these; the portable part (which resource types
cost what, for how long) is written once here, and a provider adds only the names of
the instance types its platform would use (`Sizer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOURS_PER_MONTH = 730.0
"""Hours in an average month (8,760 / 12), as the clouds' own calculators count them."""
DEFAULT_RUN_HOURS = 1.0
"""A training job's assumed run time when it sets no `timeout`."""


@dataclass(frozen=True)
class Usage:
    """One billable thing a resource runs or keeps."""

    what: str
    """In words: `training`, `serving variant champion`, `dataset storage`."""
    kind: str
    """The price table's section: `training`, `serving` or `storage`."""
    sku: str
    """Instance, machine or VM type (`ml.m5.xlarge`, `n1-standard-4`), an accelerator
    (`NVIDIA_TESLA_T4`) or, for storage, `storage`."""
    quantity: float | None
    """Instances (times units per instance), or GB for storage; None: not known at plan."""
    hours: float | None = None
    """Hours per run for what runs to completion (training); None: always on."""
    assumption: str = ""
    """What the figure assumes, shown beside it (`1 h assumed: no timeout set`)."""


@dataclass(frozen=True)
class UsageRequest:
    resource_name: str
    resource_type: str
    inputs: dict[str, Any]
    """Desired (or recorded) inputs; may hold `Unknown` values, known only after apply."""


@dataclass(frozen=True)
class UsageResponse:
    items: list[Usage] = field(default_factory=list)
    unknown: str = ""
    """Why there is no estimate (a size that depends on a value known after apply)."""


Sizer = Callable[[str, dict[str, Any], dict[str, Any]], list[tuple[str, float]]]
"""(kind `training` | `serving`, compute, provider options) -> [(sku, units per
instance)]: an instance type, plus accelerators where the platform prices them apart.
Raises ValueError when no type fits."""


def portable_usage(req: UsageRequest, stack_dir: Path, provider_type: str, sizes: Sizer,
                   training_replicas: bool = True) -> UsageResponse:
    """The usage of a portable resource: a training job's instances for its run time, an
    endpoint's instances for every variant always on, a dataset's stored bytes.
    `training_replicas`: whether the platform trains on `compute.instances` machines
    (else one)."""
    spec = _spec(req)
    if isinstance(spec, str):
        return UsageResponse(unknown=spec)
    options = dict(spec.provider_options.get(provider_type, {}))
    try:
        if req.resource_type == "training_job":
            return _training(spec, options, sizes, training_replicas)
        if req.resource_type == "endpoint":
            return _endpoint(spec, options, sizes)
        if req.resource_type == "dataset":
            return _dataset(spec, stack_dir)
    except ValueError as exc:
        return UsageResponse(unknown=str(exc))
    return UsageResponse()


def _training(spec: Any, options: dict, sizes: Sizer, replicas: bool) -> UsageResponse:
    compute = spec.compute.model_dump()
    count = _count(compute.get("instances")) if replicas else 1
    if count is None:
        return UsageResponse(unknown="compute.instances is known only after apply")
    if spec.timeout:
        from ..durations import seconds

        hours, note = seconds(spec.timeout) / 3600, f"at most {spec.timeout} (its timeout)"
    else:
        hours, note = DEFAULT_RUN_HOURS, f"{DEFAULT_RUN_HOURS:g} h assumed: no timeout set"
    return UsageResponse(items=[Usage("training", "training", sku, count * units, hours, note)
                                for sku, units in sizes("training", compute, options)])


def _endpoint(spec: Any, options: dict, sizes: Sizer) -> UsageResponse:
    compute = spec.compute.model_dump()
    count = _count(compute.get("instances"))
    if count is None:
        return UsageResponse(unknown="compute.instances is known only after apply")
    items = []
    for name, variant in spec.variants.items():
        what = f"serving variant {name}" + (" (shadow)" if variant.shadow else "")
        items += [Usage(what, "serving", sku, count * units, None, "always on")
                  for sku, units in sizes("serving", compute, options)]
    return UsageResponse(items=items)


def _dataset(spec: Any, stack_dir: Path) -> UsageResponse:
    source = spec.source
    if not isinstance(source, str) or "://" in source or source.startswith("${"):
        return UsageResponse(items=[Usage("dataset storage", "storage", "storage", None,
                                          assumption="size known after apply")])
    path = Path(source) if Path(source).is_absolute() else stack_dir / source
    try:
        size = path.stat().st_size
    except OSError:
        return UsageResponse(unknown=f"source '{source}' not found")
    return UsageResponse(items=[Usage("dataset storage", "storage", "storage", size / 1e9,
                                      assumption=f"{size:,} bytes; earlier versions stay")])


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _spec(req: UsageRequest) -> Any:
    """The inputs as the portable model, a value known only after apply kept as a
    `${...}` placeholder (which every referenceable field accepts); or why it can't be."""
    from pydantic import ValidationError

    from ..spec.models import RESOURCE_TYPES
    from ..values import Unknown, reveal

    def placeholder(value: Any) -> Any:
        if isinstance(value, Unknown):
            return "${unknown}"
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholder(v) for v in value]
        return value

    model = RESOURCE_TYPES.get(req.resource_type)
    if model is None:
        return f"no resource type '{req.resource_type}'"
    try:
        return model.model_validate({**placeholder(reveal(req.inputs)),
                                     "type": req.resource_type})
    except (ValidationError, TypeError) as exc:
        return f"inputs not known yet ({str(exc).splitlines()[0]})"
