"""What a resource would run on Vertex AI, for the plan's cost estimate: the machine
type `compute.py` would pick and its accelerators (priced per GPU), never an API call."""

from __future__ import annotations

from typing import Any

from mlform.engine.pricing.usage import UsageRequest, UsageResponse, portable_usage
from mlform.engine.provider import ProviderContext

from . import config as gcp_config
from .compute import machine_spec


def usage(ctx: ProviderContext, req: UsageRequest) -> UsageResponse:
    cfg = gcp_config.load(ctx.config)

    def sizes(kind: str, compute: dict[str, Any], options: dict[str, Any]):
        spec = machine_spec(cfg, kind, compute, options)
        out = [(spec["machine_type"], 1.0)]
        if spec.get("accelerator_count"):
            out.append((spec["accelerator_type"], float(spec["accelerator_count"])))
        return out

    # Custom jobs run one replica (see training.py); deployed models min_replica_count.
    return portable_usage(req, ctx.stack_dir, "gcp", sizes, training_replicas=False)
