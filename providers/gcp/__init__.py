"""The `gcp` provider: realises mlform stacks on Google Vertex AI, with GCS for data and
artifacts.

Importing this package is cheap: google-cloud-aiplatform and the handlers load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GcpProvider"]


def __getattr__(name: str) -> Any:
    if name == "GcpProvider":
        from .provider import GcpProvider

        return GcpProvider
    raise AttributeError(name)
