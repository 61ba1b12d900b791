"""The local `feature_view`: named features over a dataset, materialised as one version
per (definition, data version) under `features/<name>/<version>/`:

    offline.parquet  entity, event time (UTC) and features, ordered by event time
    online.sqlite    the latest values per entity (see `features/online.py`)
    profile.json     profile of the offline table (for model cards)
    meta.json        {version, dataset, definition, rows, entities, created}
    training/        point-in-time joins onto labels datasets, made for training jobs

The plan names each added, removed or changed feature and the version the stores
will be re-materialised as. Versions are kept until the view is destroyed, so a
model trained on an older one can still be traced to its data.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import (
    ApplyResponse,
    AttributeChange,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    ProviderContext,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_unknown, reveal

from .features.definition import Definition, definition_of, feature_changes
from .paths import LocalPaths, features_uri

OFFLINE = "offline.parquet"
ONLINE = "online.sqlite"
DEFINITION_FIELDS = ("entity", "timestamp", "features", "ttl", "online")


class FeatureViewHandler(ResourceHandler):
    rtype = "feature_view"

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    # --- plan ---------------------------------------------------------------

    def diff(self, req: DiffRequest) -> DiffResponse:
        desired = req.desired_inputs
        base = default_diff(req)
        if contains_unknown({k: desired.get(k) for k in DEFINITION_FIELDS}):
            return base
        try:
            after = definition_of(reveal(desired))
            before = definition_of(reveal(req.prior_inputs)) if req.prior_inputs else None
        except (ValueError, KeyError) as e:
            return DiffResponse(error=f"feature view '{req.resource.name}': {e}")
        changes = [c for c in base.changes if not c.path.startswith("features")]
        per_feature = [AttributeChange(f"features.{c.name}", c.before, c.after,
                                       reason=f"feature {c.action}")
                       for c in feature_changes(before, after)] if before else []
        # the same features in another order show as the list's own change
        changes += per_feature or [c for c in base.changes if c.path.startswith("features")]
        dataset = desired.get("dataset")
        if contains_unknown(dataset):
            return DiffResponse(changes=changes)
        version = after.digest(_data_version(str(reveal(dataset))))
        name = req.resource.name
        planned = {"uri": features_uri(name, version), "version": version,
                   "features": after.names,
                   "online_store": str(self.paths.features(name, version) / ONLINE)
                   if after.online else None}
        prior = (req.prior_outputs or {}).get("version")
        note = ""
        if req.prior_inputs is not None and prior != version:
            note = (f"offline and online stores re-materialised as version {version} "
                    f"({planned['uri']})")
            if not changes:
                changes.append(AttributeChange("version", prior, version))
        return DiffResponse(changes=changes, planned_outputs=planned, note=note)

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        version = (req.outputs or {}).get("version")
        if version is None and req.inputs and not contains_unknown(req.inputs):
            try:  # an interrupted create: adopt what it materialised
                version = definition_of(reveal(req.inputs)).digest(
                    _data_version(str(reveal(req.inputs["dataset"]))))
            except (ValueError, KeyError):
                return ObserveResponse(exists=False)
        meta = self._meta(name, version) if version else None
        if meta is None:
            detail = f"version {version} is gone from {self.paths.features(name, version)}" \
                if version else ""
            return ObserveResponse(exists=False, detail=detail)
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._materialise(req.resource.name, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._materialise(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.paths.feature_versions(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def _materialise(self, name: str, inputs: dict[str, Any],
                     progress: Progress) -> ApplyResponse:
        from mlform.ml.profile import profile_frame

        from .dataset import load_dataset
        from .features.offline import feature_table
        from .features.online import write_online_store

        inputs = reveal(inputs)
        dataset = str(inputs["dataset"])
        try:
            definition = definition_of(inputs)
            version = definition.digest(_data_version(dataset))
        except ValueError as e:
            return ApplyResponse(error=f"feature view '{name}': {e}")
        meta = self._meta(name, version)
        if meta:
            progress(f"version {version} is already materialised: adopting it")
            return ApplyResponse(id=name, outputs=self._outputs(name, meta))
        try:
            progress(f"computing {len(definition.features)} feature(s) from {dataset}")
            table = feature_table(load_dataset(self.paths, dataset), definition)
        except (ValueError, FileNotFoundError) as e:
            return ApplyResponse(error=f"feature view '{name}': {e}")
        root = self.paths.feature_versions(name)
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            table.to_parquet(staging / OFFLINE, index=False)
            progress(f"offline store: {len(table)} rows")
            entities = int(table[definition.entity].nunique())
            if definition.online:
                write_online_store(staging / ONLINE, table, definition, version)
                progress(f"online store: {entities} entities")
            (staging / "profile.json").write_text(json.dumps(profile_frame(table), indent=1))
            meta = {"version": version, "dataset": dataset, "definition": definition.to_dict(),
                    "rows": int(len(table)), "entities": entities,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (staging / "meta.json").write_text(json.dumps(meta, indent=1))
            staging.rename(self.paths.features(name, version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    # --- helpers ------------------------------------------------------------

    def _meta(self, name: str, version: str) -> dict[str, Any] | None:
        meta_file = self.paths.features(name, version) / "meta.json"
        return json.loads(meta_file.read_text()) if meta_file.is_file() else None

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        version = meta["version"]
        directory = self.paths.features(name, version)
        definition = Definition.from_dict(meta["definition"])
        return {"uri": features_uri(name, version), "version": version,
                "online_store": str(directory / ONLINE) if definition.online else None,
                "features": definition.names, "rows": meta["rows"],
                "entities": meta["entities"], "path": str(directory / OFFLINE)}


def _data_version(dataset_uri: str) -> str:
    """The dataset version a `local://datasets/<name>/<version>` uri names (the uri
    itself for data held elsewhere, which changes with its content all the same)."""
    parts = dataset_uri.rstrip("/").split("/")
    return parts[-1] if dataset_uri.startswith("local://datasets/") else dataset_uri
