"""Portable `compute` to Vertex AI machine types and accelerators, and the prebuilt
PyTorch images per region.

Order of precedence: `provider_options.gcp.machine_type` (and `accelerator_type`) on the
resource, then the provider's `machine_types` for the kind, then the tables below.
"""

from __future__ import annotations

from typing import Any

from .config import GcpConfig

# (max vCPUs, max memory GiB, machine type), smallest first.
CPU = [(4, 16, "n1-standard-4"), (8, 30, "n1-standard-8"), (16, 60, "n1-standard-16"),
       (32, 120, "n1-standard-32"), (64, 240, "n1-standard-64"), (96, 360, "n1-standard-96")]
CPU_SERVING = [(2, 7.5, "n1-standard-2"), *CPU]
# (max GPUs, machine type that takes them): T4/V100/P100 attach to n1 machines.
GPU = [(1, "n1-standard-8"), (2, "n1-standard-16"), (4, "n1-standard-32"),
       (8, "n1-standard-64")]
IMAGE_VERSION = "2-4.py310"
"""The prebuilt PyTorch image version used unless `images:` says otherwise."""


def machine_spec(cfg: GcpConfig, kind: str, compute: dict[str, Any] | None,
                 options: dict[str, Any]) -> dict[str, Any]:
    """The MachineSpec (machine_type, accelerator_type, accelerator_count) for `kind`
    (training, serving, batch, evaluation) of a resource with `compute`."""
    compute = compute or {}
    gpus = int(compute.get("gpus") or 0)
    spec: dict[str, Any] = {"machine_type": _machine_type(cfg, kind, compute, options, gpus)}
    if gpus:
        spec["accelerator_type"] = str(options.get("accelerator_type") or cfg.accelerator_type)
        spec["accelerator_count"] = gpus
    return spec


def _machine_type(cfg: GcpConfig, kind: str, compute: dict[str, Any],
                  options: dict[str, Any], gpus: int) -> str:
    if options.get("machine_type"):
        return str(options["machine_type"])
    override = cfg.machine_types.get(f"{kind}_gpu" if gpus else kind)
    if override:
        return override
    if gpus:
        for most, machine in GPU:
            if gpus <= most:
                return machine
        raise ValueError(f"no machine type takes {gpus} GPUs; the most is {GPU[-1][0]}")
    cpus = compute.get("cpus") or 0
    memory = compute.get("memory_gb") or 0
    for max_cpus, max_mem, machine in (CPU_SERVING if kind == "serving" else CPU):
        if cpus <= max_cpus and memory <= max_mem:
            return machine
    raise ValueError(f"no machine type has {cpus} vCPUs and {memory} GiB; "
                     "set provider_options.gcp.machine_type")


def image_uri(cfg: GcpConfig, kind: str, gpu: bool, options: dict[str, Any]) -> str:
    """The prebuilt PyTorch image for training or serving in the region's repository."""
    if options.get("image_uri"):
        return str(options["image_uri"])
    chosen = cfg.images.get(f"{kind}_gpu" if gpu else kind) or cfg.images.get(kind)
    if chosen:
        return chosen
    area = cfg.region.split("-", 1)[0]
    host = {"europe": "europe", "asia": "asia", "australia": "asia",
            "me": "europe"}.get(area, "us")
    device = "gpu" if gpu else "cpu"
    # mlform's serving script runs as a custom container command, so serving uses the
    # training image too: it holds python, torch, pandas and google-cloud-storage.
    return f"{host}-docker.pkg.dev/vertex-ai/training/pytorch-{device}.{IMAGE_VERSION}:latest"
