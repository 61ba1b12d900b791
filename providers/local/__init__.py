"""The local provider: the whole ML stack on this machine, for real.

Importing this package is cheap; torch, pandas and the web server are imported
by the handlers that need them, when they need them.
"""

from .provider import LocalProvider

__all__ = ["LocalProvider"]
