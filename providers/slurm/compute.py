"""Portable `compute` and the provider's settings to sbatch options.

    compute.cpus       --cpus-per-task
    compute.memory_gb  --mem (in MiB, rounded up)
    compute.gpus       --gres=gpu:N
    compute.instances  --nodes
    timeout            --time (minutes; the provider's time_limit when unset)

The provider's partition, account and qos follow, then its `sbatch_args`, then a
resource's own `provider_options.slurm.sbatch_args`, so the most specific wins
(sbatch takes the last of a repeated option).
"""

from __future__ import annotations

import math
from typing import Any

from .config import SlurmConfig, job_minutes


def sbatch_flags(cfg: SlurmConfig, compute: dict[str, Any] | None, timeout: str | None,
                 options: dict[str, Any] | None = None) -> list[str]:
    compute = compute or {}
    flags = []
    if compute.get("cpus"):
        flags.append(f"--cpus-per-task={int(compute['cpus'])}")
    if compute.get("memory_gb"):
        flags.append(f"--mem={math.ceil(float(compute['memory_gb']) * 1024)}M")
    if int(compute.get("gpus") or 0) > 0:
        flags.append(f"--gres=gpu:{int(compute['gpus'])}")
    if int(compute.get("instances") or 1) > 1:
        flags.append(f"--nodes={int(compute['instances'])}")
    minutes = job_minutes(timeout)
    if minutes is not None:
        flags.append(f"--time={minutes}")
    elif cfg.time_limit:
        flags.append(f"--time={cfg.time_limit}")
    for flag, value in (("--partition", cfg.partition), ("--account", cfg.account),
                        ("--qos", cfg.qos)):
        if value:
            flags.append(f"{flag}={value}")
    own = (options or {}).get("sbatch_args") or []
    return [*flags, *cfg.sbatch_args, *map(str, own)]
