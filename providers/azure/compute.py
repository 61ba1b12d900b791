"""Portable `compute` to Azure VM sizes, and the curated environments jobs and deployments
run in.

Order of precedence: `provider_options.azure.instance_type` on the resource, then the
provider's `vm_sizes` for the kind, then the tables below.
"""

from __future__ import annotations

from typing import Any

from .config import AzureConfig

# (max vCPUs, max memory GiB, VM size), smallest first.
CPU = [(4, 14, "Standard_DS3_v2"), (8, 28, "Standard_DS4_v2"), (16, 56, "Standard_DS5_v2"),
       (32, 128, "Standard_D32s_v3"), (64, 256, "Standard_D64s_v3")]
CPU_SERVING = [(2, 7, "Standard_DS2_v2"), *CPU]
# (max GPUs, VM size holding them)
GPU = [(1, "Standard_NC4as_T4_v3"), (2, "Standard_NC12s_v3"), (4, "Standard_NC64as_T4_v3"),
       (8, "Standard_ND40rs_v2")]
TRAINING_ENVIRONMENT = "azureml:AzureML-acpt-pytorch-2.2-cuda12.1@latest"
"""The curated PyTorch environment built-in trainers and scripts run in."""
SERVING_ENVIRONMENT = TRAINING_ENVIRONMENT
"""Deployments run the same curated environment (python, torch, pandas); override with
`environments: {serving: ...}` for one holding azureml-inference-server-http of your pin."""


def vm_size(cfg: AzureConfig, kind: str, compute: dict[str, Any] | None,
            options: dict[str, Any]) -> str:
    """The VM size for `kind` (training, serving, batch) of a resource with `compute`."""
    if options.get("instance_type"):
        return str(options["instance_type"])
    compute = compute or {}
    gpus = int(compute.get("gpus") or 0)
    override = cfg.vm_sizes.get(f"{kind}_gpu" if gpus else kind)
    if override:
        return override
    if gpus:
        for most, size in GPU:
            if gpus <= most:
                return size
        raise ValueError(f"no VM size holds {gpus} GPUs; the most is {GPU[-1][0]}: set "
                         "provider_options.azure.instance_type")
    cpus = compute.get("cpus") or 0
    memory = compute.get("memory_gb") or 0
    for max_cpus, max_mem, size in (CPU_SERVING if kind == "serving" else CPU):
        if cpus <= max_cpus and memory <= max_mem:
            return size
    raise ValueError(f"no VM size in the table has {cpus} vCPUs and {memory} GiB; set "
                     "provider_options.azure.instance_type")


def environment(cfg: AzureConfig, kind: str, options: dict[str, Any]) -> str:
    """The environment a `kind` (training, serving) runs in."""
    if options.get("environment"):
        return str(options["environment"])
    return cfg.environments.get(kind) or (TRAINING_ENVIRONMENT if kind == "training"
                                          else SERVING_ENVIRONMENT)
