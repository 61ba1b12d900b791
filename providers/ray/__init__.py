"""The `ray` provider: realises mlform stacks on an existing Ray cluster (Ray Jobs for
training and batch, Ray Serve for endpoints), with a shared filesystem for data.

Importing this package is cheap: ray and the handlers load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RayProvider"]


def __getattr__(name: str) -> Any:
    if name == "RayProvider":
        from .provider import RayProvider

        return RayProvider
    raise AttributeError(name)
