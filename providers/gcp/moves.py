"""Moves on gcp: `export` and `import_` of datasets, training runs and models in the
portable bundle (`mlform.ml.bundle`), mixed into their handlers.

A dataset is stored at its content version's key, as an upload would store it. A
training run carried over creates no Vertex AI custom job: its files are laid out as a
custom job leaves them, `training/<resource>/<run_id>/model/` (the artifact's files,
`metrics.json`, the held-out rows as `holdout.csv`, which the gate evaluation job reads,
next to the bundle's `holdout.parquet`, and `run.json` with the seed), so a model, a gate
evaluation and an endpoint read it as any other. A model is registered in the Vertex AI
Model Registry from that artifact with the gate results the bundle records (or, with
`on_move: {rerun_gates: true}`, with its gates judged here). Every import reads what it
wrote back from GCS and refuses a copy that differs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from mlform.engine.moves.verbs import ExportRequest, ExportResponse, ImportRequest
from mlform.engine.provider import ApplyResponse, Progress
from mlform.ml import bundle as bundles

from .layout import split_uri

MOVED = "moved_from"
"""Private output of a training job carried over from another provider."""

DERIVED = ("holdout.csv", "run.json")
"""Files of a run's folder made from the bundle on import, not part of it."""


def _export(h: Any, req: ExportRequest, files: dict[str, Path | bytes],
            outputs: dict[str, Any]) -> ExportResponse:
    if req.staging is None:
        return ExportResponse(files=bundles.listing(files))
    made = bundles.stage(req.staging, req.resource.type, req.resource.name,
                         h.ctx.provider_name, files, outputs)
    return ExportResponse(files=tuple((f.path, f.size) for f in made.files),
                          bundle=made.directory)


def _labels(h: Any, req: ImportRequest) -> dict[str, str]:
    try:
        spec = h.spec(req.inputs)
    except Exception:  # labels are ownership marks; the spec's tags are a nicety
        spec = None
    labels: dict[str, str] = h.labels(req.resource.name, spec)
    return labels


class DatasetMoves:
    """Mixed into the gcp `DatasetHandler`."""

    def export(self, req: ExportRequest) -> ExportResponse:
        h: Any = self
        uri = req.outputs.get("uri")
        if not uri:
            return ExportResponse(error=f"dataset '{req.resource.name}' records no uri")
        bucket, key = split_uri(uri)
        name = key.rsplit("/", 1)[-1]
        data = h.gcs(req.resource.name).get(bucket, key)
        if data is None:
            return ExportResponse(error=f"{uri} is gone")
        return _export(h, req, {name: data}, {
            "version": req.outputs.get("version"), "rows": req.outputs.get("rows"),
            "columns": req.outputs.get("columns"), "format": name.rsplit(".", 1)[-1]})

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        h: Any = self
        gcs = h.gcs(req.resource.name)
        try:
            bundle = bundles.load(req.bundle)
            out = bundle.outputs
            key = h.layout.dataset_key(req.resource.name, out["version"], out["format"])
            data = bundle.path(bundle.files[0].path).read_bytes()
            if gcs.get(h.cfg.bucket, key) != data:
                progress(f"copying version {out['version']} to {h.layout.uri(key)}")
                gcs.put(h.cfg.bucket, key, data, _labels(h, req))
            bundles.verify_copy(bundle, lambda _: gcs.get(h.cfg.bucket, key),
                                h.layout.uri(key))
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        uri = h.layout.uri(key)
        return ApplyResponse(id=uri, outputs={"uri": uri, "version": out["version"],
                                              "path": uri, "rows": out.get("rows"),
                                              "columns": out.get("columns")})


def _stored(rel: str) -> str:
    """Where bundle file `rel` lies in a run's `model/` folder."""
    return rel.removeprefix("artifact/")


class TrainingMoves:
    """Mixed into the gcp `TrainingJobHandler`."""

    def export(self, req: ExportRequest) -> ExportResponse:
        h: Any = self
        artifact = req.outputs.get("artifact")
        if not artifact:
            return ExportResponse(error=f"training job '{req.resource.name}' records no "
                                        "artifact")
        gcs = h.gcs(req.resource.name)
        bucket, prefix = split_uri(str(artifact).rstrip("/") + "/")
        blobs = [b for b in gcs.list(bucket, prefix) if not b.name.endswith("/")]
        if not blobs:
            return ExportResponse(error=f"{artifact} is gone")
        files: dict[str, Path | bytes] = {}
        rows_csv = None
        for blob in blobs:
            rel = blob.name[len(prefix):]
            if rel == "holdout.csv":
                rows_csv = blob
            elif rel in ("holdout.parquet", "metrics.json"):
                files[rel] = gcs.get(bucket, blob.name) or b""
            elif rel not in DERIVED:
                files[f"artifact/{rel}"] = gcs.get(bucket, blob.name) or b""
        if "holdout.parquet" not in files:  # a custom job leaves its rows as CSV
            import pandas as pd

            if rows_csv is None:
                return ExportResponse(error=f"{artifact} holds no held-out rows")
            parquet = io.BytesIO()
            pd.read_csv(io.BytesIO(gcs.get(bucket, rows_csv.name) or b"")).to_parquet(
                parquet, index=False)
            files["holdout.parquet"] = parquet.getvalue()
        run = json.loads(gcs.get(bucket, prefix + "run.json") or b"{}")
        outputs = {k: req.outputs.get(k) for k in ("run_id", "metrics", "device",
                                                    "device_note", "code_digest")}
        outputs["seed"] = run.get("seed")
        return _export(h, req, files, outputs)

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        import pandas as pd

        h: Any = self
        gcs = h.gcs(req.resource.name)
        try:
            bundle = bundles.load(req.bundle)
            out = bundle.outputs
            run_id = str(out["run_id"])
            prefix = h.layout.training_dir(req.resource.name, run_id) + "/model/"
            where = h.layout.uri(prefix)

            def read(rel: str) -> bytes | None:
                got: bytes | None = gcs.get(h.cfg.bucket, prefix + _stored(rel))
                return got

            labels = _labels(h, req)
            if not all(bundles.digest_of(read(f.path) or b"") == f.sha256
                       for f in bundle.files):
                progress(f"copying run {run_id} ({len(bundle.files)} file(s), "
                         f"{bundles.human_size(bundle.size)}) to {where}")
                for f in bundle.files:
                    gcs.put(h.cfg.bucket, prefix + _stored(f.path),
                            bundle.path(f.path).read_bytes(), labels)
            rows = pd.read_parquet(bundle.path("holdout.parquet"))
            gcs.put(h.cfg.bucket, prefix + "holdout.csv", rows.to_csv(index=False).encode(),
                    labels, content_type="text/csv")
            gcs.put(h.cfg.bucket, prefix + "run.json", json.dumps({
                "seed": int(out.get("seed") or 0), "device": out.get("device") or "cpu",
                "device_note": out.get("device_note") or "",
                MOVED: bundle.source}).encode(), labels, content_type="application/json")
            bundles.verify_copy(bundle, read, where)
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        progress(f"run {run_id} carried over from provider '{bundle.source}': no Vertex AI "
                 "custom job")
        return ApplyResponse(id=run_id, outputs={
            "artifact": where, "run_id": run_id, "metrics": out.get("metrics") or {},
            "device": out.get("device") or "cpu", "device_note": out.get("device_note") or "",
            "code_digest": out.get("code_digest"), "job": "", "machine_type": "",
            MOVED: bundle.source})


class ModelMoves:
    """Mixed into the gcp `ModelHandler`."""

    def export(self, req: ExportRequest) -> ExportResponse:
        h: Any = self
        gates = req.outputs.get("gates") or []
        return _export(h, req, bundles.gates_file(gates),
                       {"gates": gates, "version": req.outputs.get("version")})

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        from mlform.ml.gates import GateResult

        h: Any = self
        try:
            bundle, recorded = bundles.load_model(req.bundle)
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        results = None  # judged by the model's own gate runner on the copied run
        if (req.inputs.get("on_move") or {}).get("rerun_gates"):
            progress("judging the gates again on gcp (on_move.rerun_gates)")
        else:
            progress(f"registering with the {len(recorded)} recorded gate result(s) from "
                     f"provider '{bundle.source}'")
            results = [GateResult.from_dict(g) for g in recorded]
        resp: ApplyResponse = h._register(req.resource, req.inputs, progress, results=results)
        return resp
