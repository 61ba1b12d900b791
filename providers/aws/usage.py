"""What a resource would run on SageMaker, for the plan's cost estimate: the instance
types `compute.py` would pick, never an API call."""

from __future__ import annotations

from typing import Any

from mlform.engine.pricing.usage import UsageRequest, UsageResponse, portable_usage
from mlform.engine.provider import ProviderContext

from . import config as aws_config
from .compute import instance_type


def usage(ctx: ProviderContext, req: UsageRequest) -> UsageResponse:
    cfg = aws_config.load(ctx.config)

    def sizes(kind: str, compute: dict[str, Any], options: dict[str, Any]):
        return [(instance_type(cfg, "inference" if kind == "serving" else kind, compute,
                               options), 1.0)]

    # SageMaker trains on compute.instances machines, and gives each variant its own.
    return portable_usage(req, ctx.stack_dir, "aws", sizes, training_replicas=True)
