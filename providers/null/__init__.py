"""The null provider: resources that exist only in state, with configurable latency and
injected failures. It serves the engine's tests and benchmarks, as Terraform's null
provider does.
"""

from .provider import NullProvider

__all__ = ["NullProvider"]
