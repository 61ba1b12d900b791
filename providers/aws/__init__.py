"""The `aws` provider: realises mlform stacks on Amazon SageMaker, with S3 for artifacts.

Importing this package is cheap: boto3 and the handlers load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AwsProvider"]


def __getattr__(name: str) -> Any:
    if name == "AwsProvider":
        from .provider import AwsProvider

        return AwsProvider
    raise AttributeError(name)
