"""The ray `model`: a registry on the cluster's shared storage, with the core's gates.

    registry/<model>/<version>/   artifact/ (a copy of the run's), meta.json
    registry/<model>/aliases.json {"champion": 3}

A training run's artifact is registered as the next version only when every gate
passes on the run's held-out rows (`mlform.ml.gates`, judged as on every provider);
a failed gate registers nothing and nothing downstream changes. Registering the same
run again returns the version it already has; a create (first apply, replacement)
judges the gates again, so stricter gates fail before anything changes. The aliases
move to each newly registered version. Gates run on this machine, which reads the run
from the shared storage; a `better_than: champion` gate compares the run with the
version `aliases.json` names `champion` (its artifact in the registry, loaded by
`mlform.ml.champion`), on the run's held-out rows, as on `local`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    Failure,
    ObserveRequest,
    ObserveResponse,
    Progress,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_unknown, reveal

from .errors import RayError
from .handler import RayHandler
from .paths import read_json, uri, write_json

REPLACE_ON = frozenset({"name"})
REASONS = {"name": "another registry name is another registry"}


class ModelHandler(RayHandler):
    rtype = "model"

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, REPLACE_ON, REASONS)
        name = req.desired_inputs.get("name") or req.resource.name
        artifact = req.desired_inputs.get("artifact")
        if contains_unknown([name, artifact]):
            return base
        planned: dict[str, Any] = {"name": name}
        found = self._find(str(name), str(reveal(artifact)))
        if found:
            planned.update(uri=uri("models", name, found["version"]), version=found["version"])
        return DiffResponse(changes=base.changes, planned_outputs=planned)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        outputs = req.outputs or {}
        name = outputs.get("name") or (req.inputs or {}).get("name") or req.resource.name
        meta = None
        if outputs.get("version") is not None:
            meta = read_json(self.paths.model_version(name, outputs["version"]) / "meta.json")
        elif req.inputs and not contains_unknown(req.inputs.get("artifact")):
            meta = self._find(name, str(reveal(req.inputs["artifact"])))
        if meta is None or not (self.paths.model_version(name, meta["version"])
                                / "artifact").is_dir():
            detail = f"version {outputs['version']} of model '{name}' is gone from the " \
                     f"registry at {self.paths.registry(name)}" \
                if outputs.get("version") is not None else ""
            return ObserveResponse(exists=False, detail=detail)
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource.name, req.inputs, progress, judge_again=True)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        name = (req.outputs or {}).get("name") or (req.inputs or {}).get("name") \
            or req.resource.name
        shutil.rmtree(self.paths.registry(name), ignore_errors=True)
        return DeleteResponse()

    def _register(self, resource: str, inputs: dict[str, Any], progress: Progress,
                  judge_again: bool = False) -> ApplyResponse:
        from filelock import FileLock

        spec = self.spec(inputs)
        name = spec.name or resource
        run_dir = self._run_dir(spec.artifact)
        self.cluster.require_storage()
        root = self.paths.registry(name)
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".lock")):
            meta = self._find(name, spec.artifact)
            if meta is None or judge_again:
                progress(f"evaluating {len(spec.gates)} gate(s) on the held-out rows")
                gates, error = self._judge(name, spec, run_dir, inputs)
                if error:  # only a failed gate refuses a version
                    return ApplyResponse(error=error, failure=Failure.GATE_FAILED)
                if meta is None:
                    meta = self._add_version(name, spec.artifact, run_dir, gates)
                    progress(f"registered version {meta['version']}")
            else:
                progress(f"run already registered as version {meta['version']}")
            aliases = read_json(root / "aliases.json") or {}
            moved = {**aliases, **dict.fromkeys(spec.aliases, meta["version"])}
            if moved != aliases:
                write_json(root / "aliases.json", moved)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _judge(self, name: str, spec: Any, run_dir: Path,
               inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """The gates' results on the run's held-out rows, and the error that refuses the
        registration when one fails."""
        import pandas as pd
        from mlform.engine.redaction import sensitive_gate_bounds
        from mlform.ml import champion as champions
        from mlform.ml.artifact import load_predictor
        from mlform.ml.gates import evaluate_gates

        params = read_json(run_dir / "params.json") or {}
        champion = self._champion(name, spec.artifact) \
            if champions.wanted(spec.gates) else None
        results = evaluate_gates(spec.gates, load_predictor(run_dir / "artifact"),
                                 pd.read_parquet(run_dir / "holdout.parquet"),
                                 int(params.get("seed") or 0),
                                 sensitive=sensitive_gate_bounds(inputs),
                                 champion=champions.load(*champion) if champion else None)
        failed = [r for r in results if not r.passed]
        error = None
        if failed:
            error = (f"model '{name}' was not registered: {len(failed)} of {len(results)} "
                     "gate(s) failed\n  " + "\n  ".join(r.failure() for r in failed))
        return [r.to_dict() for r in results], error

    def _champion(self, name: str, artifact: str) -> tuple[dict[str, str], Path] | None:
        """(settings, artifact folder) of the version `aliases.json` names `champion`,
        None when there is none yet or it is this very run."""
        from mlform.ml import champion as champions

        return champions.in_registry(self.paths.registry(name),
                                     lambda version: self.paths.model_version(name, version),
                                     artifact)

    def _add_version(self, name: str, artifact: str, run_dir: Path,
                     gates: list[dict[str, Any]]) -> dict[str, Any]:
        params = read_json(run_dir / "params.json") or {}
        version = max((v["version"] for v in self._versions(name)), default=0) + 1
        meta = {"version": version, "artifact": artifact, "run_id": params.get("run_id"),
                "job": params.get("job"),
                "data_version": (params.get("data") or {}).get("version"),
                "metrics": read_json(run_dir / "metrics.json") or {},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "gates": gates}
        root = self.paths.registry(name)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            shutil.copytree(run_dir / "artifact", staging / "artifact")
            write_json(staging / "meta.json", meta)
            staging.rename(self.paths.model_version(name, version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return meta

    def _run_dir(self, artifact: str) -> Path:
        try:
            run_dir = self.paths.resolve(artifact)
        except ValueError:
            raise RayError(f"artifact '{artifact}' is not a run of this ray provider; set "
                           "'artifact: ${<training_job>.artifact}'") from None
        if not artifact.startswith("ray://runs/"):
            raise RayError(f"artifact '{artifact}' is not a training run; set "
                           "'artifact: ${<training_job>.artifact}'")
        for needed in ("artifact/model.json", "holdout.parquet", "params.json"):
            if not (run_dir / needed).exists():
                raise RayError(f"artifact '{artifact}' is incomplete: {run_dir / needed} is "
                               "missing; apply its training job first")
        return run_dir

    def _versions(self, name: str) -> list[dict[str, Any]]:
        found = [read_json(p) for p in self.paths.registry(name).glob("*/meta.json")]
        return sorted((m for m in found if m), key=lambda m: m["version"])

    def _find(self, name: str, artifact: str) -> dict[str, Any] | None:
        return next((m for m in self._versions(name) if m["artifact"] == artifact), None)

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        aliases = read_json(self.paths.registry(name) / "aliases.json") or {}
        return {"uri": uri("models", name, meta["version"]), "name": name,
                "version": meta["version"], "gates": meta["gates"], "aliases": aliases,
                "versions": [{"version": v["version"], "run_id": v["run_id"],
                              "created": v["created"], "metrics": v["metrics"]}
                             for v in self._versions(name)]}
