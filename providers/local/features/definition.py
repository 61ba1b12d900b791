"""What a feature view computes, as plain data: the entity and event-time columns, the
features (plain columns or `{name, expr}` derived ones) and the ttl; its digest, and
how one definition differs from another, feature by feature."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

DIGEST_CHARS = 12


@dataclass(frozen=True)
class Feature:
    name: str
    expr: str | None = None
    """A pandas `eval` expression over the dataset's columns; None for a plain column."""

    def describe(self) -> str:
        return f"{self.name} = {self.expr}" if self.expr else self.name


@dataclass(frozen=True)
class Definition:
    entity: str
    timestamp: str
    features: tuple[Feature, ...]
    ttl_seconds: float | None
    online: bool = True

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def digest(self, data_version: str) -> str:
        """The view's version: changes exactly when the definition or the data does."""
        text = json.dumps({"entity": self.entity, "timestamp": self.timestamp,
                           "features": [[f.name, f.expr] for f in self.features],
                           "ttl": self.ttl_seconds, "data": data_version}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "timestamp": self.timestamp,
                "features": [{"name": f.name, "expr": f.expr} for f in self.features],
                "ttl_seconds": self.ttl_seconds, "online": self.online}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Definition:
        return cls(data["entity"], data["timestamp"],
                   tuple(Feature(f["name"], f.get("expr")) for f in data["features"]),
                   data.get("ttl_seconds"), data.get("online", True))


def definition_of(inputs: dict[str, Any]) -> Definition:
    """The definition a feature view's (revealed, known) inputs describe; ValueError when
    two features share a name or a feature shadows the entity or timestamp column."""
    from mlform.engine.durations import seconds

    features = tuple(Feature(f) if isinstance(f, str) else Feature(f["name"], f["expr"])
                     for f in inputs["features"])
    names = [f.name for f in features]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"feature(s) {', '.join(map(repr, repeated))} listed more than once")
    for key in ("entity", "timestamp"):
        if inputs[key] in names:
            raise ValueError(f"'{inputs[key]}' is the {key} column; it cannot also be a feature")
    ttl = inputs.get("ttl")
    return Definition(inputs["entity"], inputs["timestamp"], features,
                      seconds(ttl) if ttl else None, bool(inputs.get("online", True)))


@dataclass(frozen=True)
class FeatureChange:
    name: str
    action: str
    """added | removed | changed"""
    before: str | None
    after: str | None


def feature_changes(before: Definition, after: Definition) -> list[FeatureChange]:
    """Added, removed and changed (another expression) features, in the new order."""
    old = {f.name: f for f in before.features}
    new = {f.name: f for f in after.features}
    changes = [FeatureChange(f.name, "added", None, f.describe())
               for f in after.features if f.name not in old]
    changes += [FeatureChange(f.name, "changed", old[f.name].describe(), f.describe())
                for f in after.features if f.name in old and old[f.name] != f]
    changes += [FeatureChange(f.name, "removed", f.describe(), None)
                for f in before.features if f.name not in new]
    return changes
