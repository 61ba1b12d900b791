"""What a server serves: its variants, how traffic is split between them, logging.

A `ServingConfig` has a `stable` set of variants and, while a rollout runs, a
`canary` set that receives `canary_percent` of the requests. Within a set,
requests go to the non-shadow variants in proportion to their weights; the
shadow variants of that set get a copy. The handler builds the config from the
spec and sends it over the control route; the server validates it with the same
model, so both sides agree on the shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlform.engine.durations import seconds
from mlform.engine.spec.models import Endpoint
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..paths import LocalPaths

ARTIFACT_DIR = "artifact"
ONLINE_STORE = "online.sqlite"
CONFIG_FILE = "config.json"
"""In the endpoint's directory: what the server serves (it rewrites it on each change)."""


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    """The model uri, as written in the spec (what logs and metrics show)."""
    path: str
    """The artifact directory the uri resolves to."""
    weight: int = Field(default=100, ge=0)
    shadow: bool = False


class ServerLimits(BaseModel):
    """Bounds on what one client may send or hold (see `protocol` and `app`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_body_bytes: int = Field(default=8 * 2**20, ge=1)
    max_header_bytes: int = Field(default=16 * 2**10, ge=1)
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a request's line and headers have to arrive."""
    body_timeout: float = Field(default=30.0, gt=0)
    """Seconds a request's body has to arrive once its headers did."""
    idle_timeout: float = Field(default=5.0, gt=0)
    """Seconds a kept-alive connection may stay idle between requests."""


def _check_servable(variants: dict[str, VariantSpec]) -> None:
    if not any(v.weight > 0 and not v.shadow for v in variants.values()):
        raise ValueError("an endpoint needs at least one variant that is not a shadow "
                         "and has a weight above 0")


class ExperimentSpec(BaseModel):
    """What the server needs of an endpoint's experiment: how to assign requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key: str
    """The request body's field holding the assignment key."""


class ServingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str
    stable: dict[str, VariantSpec]
    canary: dict[str, VariantSpec] | None = None
    canary_percent: float = Field(default=0.0, ge=0.0, le=100.0)
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of requests written to the request log."""
    max_rows: int = Field(default=100_000, ge=1)
    """Rows kept in the current request log before it rolls over."""
    max_bytes: int = Field(default=256 * 2**20, ge=1)
    """Bytes the current request log reaches before it rolls over."""
    threads: int = Field(default=1, ge=1)
    """Torch intra-op threads of the server process."""
    gpus: int = Field(default=0, ge=0)
    online_store: str | None = None
    """A feature view's online store: requests may then send `entities` instead of rows."""
    canary_online_store: str | None = None
    """The online store the canary variants look entities up in during a rollout: a model
    retrained on a new feature view version needs that version's features."""
    limits: ServerLimits = Field(default_factory=ServerLimits)
    experiment: ExperimentSpec | None = None

    @model_validator(mode="after")
    def _servable(self) -> ServingConfig:
        _check_servable(self.stable)
        if self.canary is not None:
            _check_servable(self.canary)
        return self

    def digest(self) -> str:
        """Identifies what is served once no rollout is under way (canary left out)."""
        settled = self.model_dump(exclude={"canary", "canary_percent",
                                           "canary_online_store"})
        data = json.dumps(settled, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(data.encode()).hexdigest()[:32]

    def with_canary(self, canary: dict[str, VariantSpec], percent: float,
                    online_store: str | None = None) -> ServingConfig:
        return self.model_copy(update={"canary": canary, "canary_percent": float(percent),
                                       "canary_online_store": online_store})

    def settled(self) -> ServingConfig:
        """The config without a rollout in progress: stable alone."""
        return self.model_copy(update={"canary": None, "canary_percent": 0.0,
                                       "canary_online_store": None})

    def model_paths(self) -> dict[str, str]:
        """Artifact directory by model uri, over both variant sets."""
        variants = list(self.stable.values()) + list((self.canary or {}).values())
        return {v.model: v.path for v in variants}

    def traffic(self) -> dict[str, float]:
        """Percent of requests answered by each non-shadow variant."""
        canary_share = self.canary_percent if self.canary else 0.0
        return traffic([(self.stable, 100.0 - canary_share), (self.canary or {}, canary_share)])


def traffic(sets: list[tuple[Mapping[str, Any], float]]) -> dict[str, float]:
    """Percent of requests per non-shadow variant, given variant sets (variants with
    `weight` and `shadow`) and the percent of requests each set receives."""
    shares: dict[str, float] = {}
    for variants, share in sets:
        total = sum(v.weight for v in variants.values() if not v.shadow)
        for name, v in variants.items():
            if not v.shadow and share > 0 and total > 0:
                shares[name] = shares.get(name, 0.0) + share * v.weight / total
    return {name: round(p, 2) for name, p in shares.items()}


def serving_config(name: str, spec: Endpoint, paths: LocalPaths) -> ServingConfig:
    """The settled config an endpoint spec asks for; raises ValueError naming the
    variant whose model cannot be found."""
    variants = {}
    for vname, variant in spec.variants.items():
        try:
            directory = paths.resolve(variant.model) / ARTIFACT_DIR
        except ValueError as e:
            raise ValueError(f"variant '{vname}': {e}; the local provider serves "
                             "'local://models/<model>/<version>' uris") from None
        if not directory.is_dir():
            raise ValueError(f"variant '{vname}': model '{variant.model}' has no artifact "
                             f"at {directory}")
        variants[vname] = VariantSpec(model=variant.model, path=str(directory),
                                      weight=variant.weight, shadow=variant.shadow)
    online_store = None
    if spec.feature_view:
        try:
            online_store = paths.resolve(spec.feature_view) / ONLINE_STORE
        except ValueError as e:
            raise ValueError(f"feature_view: {e}") from None
        if not online_store.is_file():
            raise ValueError(f"feature_view '{spec.feature_view}' has no online store at "
                             f"{online_store}: set 'online: true' on the feature view")
    limits = spec.limits
    return ServingConfig(
        endpoint=name, stable=variants, sample_rate=spec.logging.sample_rate,
        limits=ServerLimits(max_body_bytes=int(limits.max_body_bytes),
                            max_header_bytes=int(limits.max_header_bytes),
                            header_timeout=seconds(limits.header_timeout),
                            body_timeout=seconds(limits.body_timeout),
                            idle_timeout=seconds(limits.idle_timeout)),
        max_rows=spec.logging.max_rows, max_bytes=int(spec.logging.max_bytes),
        threads=spec.compute.cpus or 1,
        gpus=spec.compute.gpus, online_store=str(online_store) if online_store else None,
        experiment=ExperimentSpec(name=spec.experiment.name, key=spec.experiment.key)
        if spec.experiment else None)


def read_config(path: Path) -> ServingConfig:
    return ServingConfig.model_validate_json(path.read_text())


def write_config(path: Path, config: ServingConfig) -> None:
    """Atomically, so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config.model_dump_json(indent=2))
    tmp.replace(path)
