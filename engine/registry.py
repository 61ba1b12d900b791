"""Finding providers by type: the entry-point group `mlform.providers`, loaded lazily."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from .diagnostics import MlformError, did_you_mean
from .provider import Provider, ProviderContext

GROUP = "mlform.providers"

EXTRAS = {"aws": "aws", "local": "local", "gcp": "gcp", "azure": "azure", "ray": "ray"}
"""Provider types shipped with mlform whose dependencies come as an extra."""


@cache
def available() -> dict[str, EntryPoint]:
    """Provider type -> entry point (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def provider_class(ptype: str) -> type[Provider]:
    eps = available()
    if ptype not in eps:
        hint = did_you_mean(ptype, eps)
        raise MlformError.simple(
            f"unknown provider type '{ptype}'",
            help=(hint + " " if hint else "") + f"installed provider types: {', '.join(sorted(eps))}"
                 + (f"; install it with: pip install 'mlform[{EXTRAS[ptype]}]'"
                    if ptype in EXTRAS else ""))
    try:
        cls = eps[ptype].load()
    except ImportError as exc:
        extra = EXTRAS.get(ptype)
        raise MlformError.simple(
            f"provider '{ptype}' cannot be loaded: {exc}",
            help=f"install its extra: pip install 'mlform[{extra}]'" if extra
            else "reinstall the package that provides it") from None
    return cls


def make_provider(ptype: str, name: str, config: dict, stack: str, stack_dir: Path) -> Provider:
    cls = provider_class(ptype)
    ctx = ProviderContext(stack=stack, stack_dir=stack_dir, provider_name=name, config=config,
                          data_dir=stack_dir / ".mlform" / name)
    return cls(ctx)
