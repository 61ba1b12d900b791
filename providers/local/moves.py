"""Moves on the local provider: `export` and `import_` of datasets, training runs and
models, in the portable bundle (`mlform.ml.bundle`), mixed into their handlers.

What each type's bundle holds (the same on every provider):

    dataset       data.<csv|parquet>; outputs version, rows, columns, format
    training_job  artifact/..., holdout.parquet, metrics.json; outputs run_id, metrics,
                  data_version, code_digest, seed, device
    model         gates.json; outputs gates, metrics, run_id, version

An import copies the files into this provider's layout, reads each back to prove the
copy, and only then makes the copy visible (a rename), so a copy that differs is
refused and leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.moves.verbs import ExportRequest, ExportResponse, ImportRequest
from mlform.engine.provider import ApplyResponse, Progress
from mlform.ml import bundle as bundles

from .paths import LocalPaths


def _export(req: ExportRequest, source: str, files: dict[str, Path | bytes],
            outputs: dict[str, Any]) -> ExportResponse:
    if req.staging is None:
        return ExportResponse(files=bundles.listing(files))
    made = bundles.stage(req.staging, req.resource.type, req.resource.name, source, files,
                         outputs)
    return ExportResponse(files=tuple((f.path, f.size) for f in made.files),
                          bundle=made.directory)


def _verified_into(bundle: bundles.Bundle, staging: Path, target: Path,
                   layout: dict[str, str]) -> None:
    """Copy each bundle file to `staging/<layout[path] or path>`, verify the copies, then
    rename `staging` to `target`."""
    for f in bundle.files:
        dest = staging / layout.get(f.path, f.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle.path(f.path), dest)
    bundles.verify_copy(bundle, lambda rel: _existing(staging / layout.get(rel, rel)),
                        f"the local copy at {target}")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _failed(exc: bundles.BundleError) -> ApplyResponse:
    return ApplyResponse(error=str(exc))


class DatasetMoves:
    """Mixed into the local `DatasetHandler`."""

    paths: LocalPaths
    ctx: Any

    def export(self, req: ExportRequest) -> ExportResponse:
        version = str(req.outputs.get("version") or "")
        meta = self._meta(req.resource.name, version) if version else None  # type: ignore[attr-defined]
        if meta is None:
            return ExportResponse(error=f"dataset '{req.resource.name}' has no stored version "
                                        f"{version} to export")
        directory = self.paths.dataset(req.resource.name, version)
        return _export(req, self.ctx.provider_name, {meta["file"]: directory / meta["file"]},
                       {"version": version, "rows": meta["rows"], "columns": meta["columns"],
                        "format": meta["format"]})

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        try:
            bundle = bundles.load(req.bundle)
            name, version = req.resource.name, bundle.outputs["version"]
            meta = self._meta(name, version)  # type: ignore[attr-defined]
            if meta is None:
                fmt = bundle.outputs["format"]
                root = self.paths.dataset_versions(name)
                root.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
                try:
                    staged = staging / f"data.{fmt}"
                    shutil.copyfile(bundle.path(bundle.files[0].path), staged)
                    bundles.verify_copy(bundle, lambda rel: staged, "the local copy")
                    from .dataset import read_table

                    self._write_version(staging, staged, read_table(staged, fmt),  # type: ignore[attr-defined]
                                        name, version, fmt, f"moved from {bundle.source}")
                    staging.rename(self.paths.dataset(name, version))
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                meta = self._meta(name, version)  # type: ignore[attr-defined]
                progress(f"copied version {version} from provider '{bundle.source}'")
        except bundles.BundleError as e:
            return _failed(e)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))  # type: ignore[attr-defined]


class TrainingMoves:
    """Mixed into the local `TrainingJobHandler`: a run carried over as a finished run."""

    paths: LocalPaths
    ctx: Any

    def export(self, req: ExportRequest) -> ExportResponse:
        from .training.runs import read_json

        run_id = req.outputs.get("run_id")
        run_dir = self.paths.run(req.resource.name, run_id) if run_id else None
        if run_dir is None or not (run_dir / "artifact").is_dir():
            return ExportResponse(error=f"training run {run_id} of '{req.resource.name}' is "
                                        "not stored here; nothing to export")
        params = read_json(run_dir / "params.json") or {}
        files: dict[str, Path | bytes] = {**bundles.tree(run_dir / "artifact", "artifact")}
        files["metrics.json"] = run_dir / "metrics.json"
        files["holdout.parquet"] = run_dir / "holdout.parquet"
        outputs = {k: req.outputs.get(k) for k in ("run_id", "metrics", "device",
                                                    "device_note", "code_digest")}
        outputs.update(data_version=params.get("data", {}).get("version"),
                       seed=params.get("seed"), target=params.get("target"),
                       test_size=params.get("test_size"), algorithm=params.get("algorithm"))
        return _export(req, self.ctx.provider_name, files, outputs)

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        from .training.runs import SUCCEEDED, current_status, write_json

        try:
            bundle = bundles.load(req.bundle)
        except bundles.BundleError as e:
            return _failed(e)
        job, run_id = req.resource.name, str(bundle.outputs["run_id"])
        run_dir = self.paths.run(job, run_id)
        status = current_status(run_dir)
        if not (status and status["status"] == SUCCEEDED and (run_dir / "artifact").is_dir()):
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=".incoming-"))
            try:
                _verified_into(bundle, staging, run_dir, {})
            except bundles.BundleError as e:
                shutil.rmtree(staging, ignore_errors=True)
                return _failed(e)
            out = bundle.outputs
            write_json(run_dir / "params.json", {
                "job": job, "run_id": run_id, "seed": out.get("seed"),
                "target": out.get("target"), "test_size": out.get("test_size"),
                "algorithm": out.get("algorithm"), "code_digest": out.get("code_digest"),
                "data": {"uri": req.inputs.get("dataset") or req.inputs.get("feature_view"),
                         "version": out.get("data_version")},
                "moved_from": bundle.source})
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            write_json(run_dir / "status.json", {
                "status": SUCCEEDED, "started": now, "finished": now,
                "device": out.get("device"), "device_note": out.get("device_note") or "",
                "moved_from": bundle.source})
            progress(f"run {run_id} carried over from provider '{bundle.source}' "
                     f"({len(bundle.files)} file(s)), not re-run")
        status = current_status(run_dir) or {}
        return ApplyResponse(id=run_id, outputs=self._outputs(job, run_id, status))  # type: ignore[attr-defined]


class ModelMoves:
    """Mixed into the local `ModelHandler`."""

    paths: LocalPaths
    ctx: Any

    def export(self, req: ExportRequest) -> ExportResponse:
        gates = req.outputs.get("gates") or []
        versions = {v.get("version"): v for v in req.outputs.get("versions") or []}
        current = versions.get(req.outputs.get("version"), {})
        outputs = {"gates": gates, "version": req.outputs.get("version"),
                   "metrics": current.get("metrics") or {}, "run_id": current.get("run_id")}
        return _export(req, self.ctx.provider_name,
                       bundles.gates_file(gates),
                       outputs)

    def import_(self, req: ImportRequest, progress: Progress) -> ApplyResponse:
        """Registered from the copied run; the local registry judges its gates on the
        copied held-out rows, which gives the recorded results again (same artifact,
        rows and seed), and refuses the version when they differ."""
        try:
            bundle, recorded = bundles.load_model(req.bundle)
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        resp: ApplyResponse = self._register(req.resource.name, req.inputs, progress,  # type: ignore[attr-defined]
                                             judge_again=True)
        rerun = bool((req.inputs.get("on_move") or {}).get("rerun_gates"))
        if resp.error or rerun:
            return resp
        got = [(g.get("gate"), g.get("passed")) for g in resp.outputs.get("gates", [])]
        want = [(g.get("gate"), g.get("passed")) for g in recorded]
        if got != want:
            return ApplyResponse(error=f"model '{req.resource.name}': gate results on this "
                                       f"provider {got} differ from the recorded {want}")
        return resp
