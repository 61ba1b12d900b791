"""The `slurm` provider: training and batch jobs on an existing Slurm cluster, with the
datasets, runs and model registry on the cluster's shared filesystem.

Importing this package is cheap: the handlers load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SlurmProvider"]


def __getattr__(name: str) -> Any:
    if name == "SlurmProvider":
        from .provider import SlurmProvider

        return SlurmProvider
    raise AttributeError(name)
