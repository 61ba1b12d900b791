"""Moves on aws: `export` and `import_` of datasets, training runs and models in the
portable bundle (`mlform.ml.bundle`), mixed into their handlers.

A training run carried over creates no SageMaker training job: its artifact, metrics
and held-out rows are packed as SageMaker would have left them,
`training/<resource>/<run_id>/output/model.tar.gz` (the artifact's files at the top,
`metrics.json`, and the held-out rows as `holdout.csv`, which the evaluation container
reads, next to the bundle's `holdout.parquet`), so a model, a gate evaluation and an
endpoint read it as any other. A model is registered from that artifact with the gate results the
bundle records (or, with `on_move: {rerun_gates: true}`, with its gates judged here).
Every import reads what it wrote back from S3 and refuses a copy that differs.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from mlform.engine.moves.verbs import ExportRequest, ExportResponse, ImportRequest
from mlform.engine.provider import ApplyResponse, Progress
from mlform.ml import bundle as bundles

from .handler import describe_or_none
from .layout import split_uri
from .naming import tag_dict, tags

MOVED = "moved_from"
"""Private output of a training job carried over from another provider."""


def _export(h: Any, req: ExportRequest, files: dict[str, Path | bytes],
            outputs: dict[str, Any]) -> ExportResponse:
    if req.staging is None:
        return ExportResponse(files=bundles.listing(files))
    made = bundles.stage(req.staging, req.resource.type, req.resource.name,
                         h.ctx.provider_name, files, outputs)
    return ExportResponse(files=tuple((f.path, f.size) for f in made.files),
                          bundle=made.directory)


def _get(h: Any, bucket: str, key: str) -> bytes | None:
    body = describe_or_none(h.clients.s3.get_object, Bucket=bucket, Key=key)
    return None if body is None else body["Body"].read()


def _put(h: Any, key: str, data: bytes, resource: str, rtype: str) -> None:
    h.clients.s3.put_object(Bucket=h.cfg.bucket, Key=key, Body=data, Tagging=urlencode(
        tag_dict(tags(h.ctx.stack, resource, rtype))))


class DatasetMoves:
    """Mixed into the aws `DatasetHandler`."""

    def export(self, req: ExportRequest) -> ExportResponse:
        h: Any = self
        uri = req.outputs.get("uri")
        if not uri:
            return ExportResponse(error=f"dataset '{req.resource.name}' records no uri")
        bucket, key = split_uri(uri)
        name = key.rsplit("/", 1)[-1]
        if req.staging is None:
            head = describe_or_none(h.clients.s3.head_object, Bucket=bucket, Key=key)
            if head is None:
                return ExportResponse(error=f"{uri} is gone")
            return ExportResponse(files=((name, int(head["ContentLength"])),))
        data = _get(h, bucket, key)
        if data is None:
            return ExportResponse(error=f"{uri} is gone")
        fmt = name.rsplit(".", 1)[-1]
        return _export(h, req, {name: data}, {
            "version": req.outputs.get("version"), "rows": req.outputs.get("rows"),
            "columns": req.outputs.get("columns"), "format": fmt})

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        h: Any = self
        try:
            bundle = bundles.load(req.bundle)
            out = bundle.outputs
            key = h.layout.dataset_key(req.resource.name, out["version"], out["format"])
            rel = bundle.files[0].path
            if _get(h, h.cfg.bucket, key) != bundle.path(rel).read_bytes():
                progress(f"copying version {out['version']} to {h.layout.uri(key)}")
                _put(h, key, bundle.path(rel).read_bytes(), req.resource.name, "dataset")
            bundles.verify_copy(bundle, lambda _: _get(h, h.cfg.bucket, key), h.layout.uri(key))
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        uri = h.layout.uri(key)
        return ApplyResponse(id=uri, outputs={"uri": uri, "version": out["version"],
                                              "path": uri, "rows": out.get("rows"),
                                              "columns": out.get("columns")})


class TrainingMoves:
    """Mixed into the aws `TrainingJobHandler`."""

    def export(self, req: ExportRequest) -> ExportResponse:
        h: Any = self
        artifact = req.outputs.get("artifact")
        if not artifact:
            return ExportResponse(error=f"training job '{req.resource.name}' records no "
                                        "artifact")
        bucket, key = split_uri(artifact)
        if req.staging is None:
            head = describe_or_none(h.clients.s3.head_object, Bucket=bucket, Key=key)
            if head is None:
                return ExportResponse(error=f"{artifact} is gone")
            return ExportResponse(files=(("model.tar.gz", int(head["ContentLength"])),))
        data = _get(h, bucket, key)
        if data is None:
            return ExportResponse(error=f"{artifact} is gone")
        files: dict[str, Path | bytes] = {}
        for rel, body in _members(data).items():
            rel = rel.lstrip("./")
            if rel in ("holdout.parquet", "metrics.json"):
                files[rel] = body
            elif rel != "holdout.csv":
                files[f"artifact/{rel}"] = body
        if "holdout.parquet" not in files:  # a SageMaker run leaves its rows as CSV
            import pandas as pd

            rows = _members(data).get("holdout.csv") or _members(data).get("./holdout.csv")
            if rows is None:
                return ExportResponse(error=f"{artifact} holds no held-out rows")
            out = io.BytesIO()
            pd.read_csv(io.BytesIO(rows)).to_parquet(out, index=False)
            files["holdout.parquet"] = out.getvalue()
        outputs = {k: req.outputs.get(k) for k in ("run_id", "metrics", "device",
                                                    "device_note", "code_digest")}
        return _export(h, req, files, outputs)

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        h: Any = self
        try:
            bundle = bundles.load(req.bundle)
            run_id = str(bundle.outputs["run_id"])
            key = h.layout.key("training", req.resource.name, run_id, "output", "model.tar.gz")
            if not _tar_matches(_get(h, h.cfg.bucket, key), bundle):
                progress(f"copying run {run_id} ({len(bundle.files)} file(s), "
                         f"{bundles.human_size(bundle.size)}) to {h.layout.uri(key)}")
                _put(h, key, _tarball(bundle), req.resource.name, "training_job")
            stored = _members(_get(h, h.cfg.bucket, key))
            bundles.verify_copy(bundle, lambda rel: stored.get(_member(rel)),
                                h.layout.uri(key))
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        progress(f"run {run_id} carried over from provider '{bundle.source}': no "
                 "SageMaker training job")
        out = bundle.outputs
        return ApplyResponse(id=run_id, outputs={
            "artifact": h.layout.uri(key), "run_id": run_id, "metrics": out.get("metrics") or {},
            "device": out.get("device") or "cpu", "device_note": out.get("device_note") or "",
            "code_digest": out.get("code_digest"), "instance_type": "",
            MOVED: bundle.source})


def _member(rel: str) -> str:
    return rel.removeprefix("artifact/")


def _tarball(bundle: bundles.Bundle) -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in bundle.files:
            tar.add(bundle.path(f.path), arcname=_member(f.path), recursive=False)
        rows = pd.read_parquet(bundle.path("holdout.parquet")).to_csv(index=False).encode()
        info = tarfile.TarInfo("holdout.csv")
        info.size = len(rows)
        tar.addfile(info, io.BytesIO(rows))
    return buf.getvalue()


def _members(data: bytes | None) -> dict[str, bytes]:
    if data is None:
        return {}
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            got = tar.extractfile(member) if member.isfile() else None
            if got is not None:
                out[member.name] = got.read()
    return out


def _tar_matches(data: bytes | None, bundle: bundles.Bundle) -> bool:
    """Whether an earlier, interrupted import already stored this run whole."""
    stored = _members(data)
    return bool(stored) and all(
        bundles.digest_of(stored.get(_member(f.path), b"")) == f.sha256 for f in bundle.files)


class ModelMoves:
    """Mixed into the aws `ModelHandler`."""

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
        if (req.inputs.get("on_move") or {}).get("rerun_gates"):
            progress("judging the gates again on aws (on_move.rerun_gates)")
            results = _judge_again(h, req)
        else:
            progress(f"registering with the {len(recorded)} recorded gate result(s) from "
                     f"provider '{bundle.source}'")
            results = [GateResult.from_dict(g) for g in recorded]
        resp: ApplyResponse = h._register(req.resource, req.inputs, progress, results=results)
        return resp


def _judge_again(h: Any, req: ImportRequest) -> list[Any]:
    """The model's gates judged on aws for a carried-over run, which has no training job
    to read metrics from: metric gates on the `metrics.json` in its artifact, any other
    gate by the evaluation Processing job on its held-out rows."""
    from mlform.engine.redaction import sensitive_gate_bounds
    from mlform.ml.gates import metric_gates

    from .gates import GateRunner

    spec = h.spec(req.inputs)
    sensitive = sensitive_gate_bounds(req.inputs)
    if not spec.gates:
        return []
    # `better_than: champion` needs the champion's predictions: the evaluation job
    if all(g.metric and not g.better_than for g in spec.gates):
        stored = _members(_get(h, *split_uri(str(spec.artifact))))
        metrics = json.loads(stored.get("metrics.json", b"{}"))
        return metric_gates(spec.gates, metrics, f"run at {spec.artifact}", sensitive)
    return GateRunner(h)._evaluate(req.resource.name, spec, 0, sensitive, Progress())
