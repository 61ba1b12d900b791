"""Portable `compute` to SageMaker instance types, and the framework images per region.

Order of precedence: `provider_options.aws.instance_type` on the resource, then the
provider's `instance_types` for the kind, then the tables below.
"""

from __future__ import annotations

from typing import Any

from .config import AwsConfig

# (max vCPUs, max memory GiB, instance type), smallest first.
CPU_TRAINING = [(4, 16, "ml.m5.xlarge"), (8, 32, "ml.m5.2xlarge"), (16, 64, "ml.m5.4xlarge"),
                (48, 192, "ml.m5.12xlarge"), (96, 384, "ml.m5.24xlarge")]
CPU_INFERENCE = [(2, 8, "ml.m5.large"), *CPU_TRAINING]
# (max GPUs, instance type): one A10G per g5 up to 4, 8 on the largest.
GPU = [(1, "ml.g5.xlarge"), (4, "ml.g5.12xlarge"), (8, "ml.g5.48xlarge")]

KINDS = ("training", "inference", "processing", "transform")

# Regions whose Deep Learning Containers live outside the usual account.
DLC_ACCOUNTS = {
    "af-south-1": "626614931356", "ap-east-1": "871362719292",
    "ap-south-2": "772153158452", "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322", "eu-central-2": "380420809688",
    "eu-south-1": "692866216735", "eu-south-2": "503227376785",
    "il-central-1": "780543022126", "me-central-1": "914824155844",
    "me-south-1": "217643126080", "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}
DLC_DEFAULT_ACCOUNT = "763104351884"


def instance_type(cfg: AwsConfig, kind: str, compute: dict[str, Any] | None,
                  options: dict[str, Any]) -> str:
    """The instance type for `kind` (one of KINDS) of a resource with `compute`."""
    if options.get("instance_type"):
        return str(options["instance_type"])
    compute = compute or {}
    gpus = int(compute.get("gpus") or 0)
    family = "training" if kind in ("training", "processing") else "inference"
    override = cfg.instance_types.get(f"{kind}_gpu" if gpus else kind) or \
        cfg.instance_types.get(f"{family}_gpu" if gpus else family)
    if override:
        return override
    if gpus:
        for most, itype in GPU:
            if gpus <= most:
                return itype
        raise ValueError(f"no instance type has {gpus} GPUs; the most is {GPU[-1][0]}")
    cpus = compute.get("cpus") or 0
    memory = compute.get("memory_gb") or 0
    for max_cpus, max_mem, itype in (CPU_TRAINING if family == "training" else CPU_INFERENCE):
        if cpus <= max_cpus and memory <= max_mem:
            return itype
    raise ValueError(f"no CPU instance type has {cpus} vCPUs and {memory} GiB; "
                     "set provider_options.aws.instance_type")


def image_uri(cfg: AwsConfig, kind: str, gpu: bool, options: dict[str, Any]) -> str:
    """The PyTorch framework image for training/processing or inference in the region."""
    if options.get("image_uri"):
        return str(options["image_uri"])
    if cfg.images.get(kind):
        return cfg.images[kind]
    repo = "pytorch-inference" if kind == "inference" else "pytorch-training"
    account = DLC_ACCOUNTS.get(cfg.region, DLC_DEFAULT_ACCOUNT)
    domain = "amazonaws.com.cn" if cfg.region.startswith("cn-") else "amazonaws.com"
    device = "gpu" if gpu else "cpu"
    return (f"{account}.dkr.ecr.{cfg.region}.{domain}/{repo}:"
            f"{cfg.pytorch_version}-{device}-{cfg.python_version}")
