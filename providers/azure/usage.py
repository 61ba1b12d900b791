"""What a resource would run on Azure Machine Learning, for the plan's cost estimate:
the VM sizes `compute.py` would pick, never an API call."""

from __future__ import annotations

from typing import Any

from mlform.engine.pricing.usage import UsageRequest, UsageResponse, portable_usage
from mlform.engine.provider import ProviderContext

from . import config as azure_config
from .compute import vm_size


def usage(ctx: ProviderContext, req: UsageRequest) -> UsageResponse:
    cfg = azure_config.load(ctx.config)

    def sizes(kind: str, compute: dict[str, Any], options: dict[str, Any]):
        return [(vm_size(cfg, kind, compute, options), 1.0)]

    # Jobs run on one node (see training.py); each deployment on compute.instances.
    return portable_usage(req, ctx.stack_dir, "azure", sizes, training_replicas=False)
