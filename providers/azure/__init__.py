"""The `azure` provider: realises mlform stacks on Azure Machine Learning, with Azure Blob
Storage for data, code and artifacts.

Importing this package is cheap: azure-ai-ml and the handlers load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AzureProvider"]


def __getattr__(name: str) -> Any:
    if name == "AzureProvider":
        from .provider import AzureProvider

        return AzureProvider
    raise AttributeError(name)
