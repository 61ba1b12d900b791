"""The slurm `model`: a registry of numbered versions on the shared filesystem.

    registry/<model>/<version>/   artifact/ (a copy of the run's), meta.json
    registry/<model>/aliases.json {"champion": 3}

A version is registered only when every gate passes, judged by `mlform.ml.gates` on the
training run's held-out rows, seeded with its seed (as on every provider): metric
gates on the metrics the job measured, fairness and robustness gates by loading the
artifact here. A failed gate registers nothing. Registering the same run again returns
its version; a create judges the gates again even then, so a replacement with stricter
gates fails before anything changes.

`better_than: champion` gates compare with the version `aliases.json` names `champion`:
its artifact, on the shared filesystem, is loaded here too and scored on the candidate's
held-out rows (`mlform.ml.champion`). No champion yet, or the champion is this very run:
the gate judges its bounds alone.
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

from .handler import Handler
from .storage import path_of, read_json, uri, write_json

REPLACE_ON = frozenset({"name"})
REASONS = {"name": "another registry name is another registry"}
NEEDED = ("artifact/model.json", "holdout.parquet", "params.json", "metrics.json")


class ModelHandler(Handler):
    rtype = "model"

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, REPLACE_ON, REASONS)
        name = req.desired_inputs.get("name") or req.resource.name
        artifact = req.desired_inputs.get("artifact")
        if contains_unknown([name, artifact]):
            return base
        planned: dict[str, Any] = {"name": name}
        found = self._find(name, str(reveal(artifact)))
        if found:
            planned.update(version=found["version"],
                           uri=uri(self.storage.model_version(name, found["version"])))
        return DiffResponse(changes=base.changes, planned_outputs=planned)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        outputs = req.outputs or {}
        name = outputs.get("name") or (req.inputs or {}).get("name") or req.resource.name
        meta = None
        if outputs.get("version") is not None:
            meta = read_json(self.storage.model_version(name, outputs["version"]) / "meta.json")
        elif req.inputs and not contains_unknown(req.inputs.get("artifact")):
            meta = self._find(name, str(reveal(req.inputs["artifact"])))
        if meta is None:
            return ObserveResponse(exists=False, detail=(
                f"version {outputs['version']} of model '{name}' is gone from "
                f"{self.storage.registry(name)}" if outputs.get("version") is not None else ""))
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource.name, req.inputs, progress, judge_again=True)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        name = (req.outputs or {}).get("name") or (req.inputs or {}).get("name") \
            or req.resource.name
        shutil.rmtree(self.storage.registry(name), ignore_errors=True)
        return DeleteResponse()

    def _register(self, resource: str, inputs: dict[str, Any], progress: Progress,
                  judge_again: bool = False) -> ApplyResponse:
        from filelock import FileLock

        spec = self.spec(inputs)
        name = spec.name or resource
        run_dir = _run_dir(spec.artifact)
        root = self.storage.registry(name)
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".lock")):
            meta = self._find(name, spec.artifact)
            if meta is None or judge_again:
                progress(f"evaluating {len(spec.gates)} gate(s) on the held-out rows")
                results = self._judge(name, spec, run_dir, inputs)
                failed = [r for r in results if not r.passed]
                if failed:
                    return ApplyResponse(error=(
                        f"model '{name}' was not registered: {len(failed)} of {len(results)} "
                        "gate(s) failed\n  " + "\n  ".join(r.failure() for r in failed)),
                        failure=Failure.GATE_FAILED)
                if meta is None:
                    meta = self._add_version(name, spec, run_dir, results)
                    progress(f"registered version {meta['version']}")
            aliases = read_json(root / "aliases.json") or {}
            write_json(root / "aliases.json",
                       {**aliases, **{a: meta["version"] for a in spec.aliases}})
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _judge(self, name: str, spec: Any, run_dir: Path,
               inputs: dict[str, Any]) -> list[Any]:
        from mlform.engine.redaction import sensitive_gate_bounds
        from mlform.ml import champion as champions
        from mlform.ml.gates import evaluate_gates, metric_gates

        if not spec.gates:
            return []
        params = read_json(run_dir / "params.json") or {}
        sensitive = sensitive_gate_bounds(inputs)
        champion = self._champion(name, spec.artifact) \
            if champions.wanted(spec.gates) else None
        if all(g.metric for g in spec.gates) and champion is None:
            # measured by the job, and no champion to score: no model to load here
            return metric_gates(spec.gates, read_json(run_dir / "metrics.json") or {},
                                f"training run {params.get('run_id')}", sensitive,
                                champion=None)
        import pandas as pd
        from mlform.ml.artifact import load_predictor

        return evaluate_gates(spec.gates, load_predictor(run_dir / "artifact"),
                              pd.read_parquet(run_dir / "holdout.parquet"),
                              int(params.get("seed") or 0), sensitive=sensitive,
                              champion=champions.load(*champion) if champion else None)

    def _champion(self, name: str, artifact: str) -> tuple[dict[str, str], Path] | None:
        """(settings, artifact folder) of the version `aliases.json` names `champion`,
        None when there is none yet or it is this very run."""
        from mlform.ml import champion as champions

        return champions.in_registry(self.storage.registry(name),
                                     lambda version: self.storage.model_version(name, version),
                                     artifact)

    def _add_version(self, name: str, spec: Any, run_dir: Path,
                     results: list[Any]) -> dict[str, Any]:
        params = read_json(run_dir / "params.json") or {}
        version = max((v["version"] for v in self._versions(name)), default=0) + 1
        meta = {"version": version, "artifact": spec.artifact, "run_id": params.get("run_id"),
                "job": params.get("job"), "data_version": params.get("data", {}).get("version"),
                "metrics": read_json(run_dir / "metrics.json") or {},
                "gates": [r.to_dict() for r in results],
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        root = self.storage.registry(name)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            shutil.copytree(run_dir / "artifact", staging / "artifact")
            write_json(staging / "meta.json", meta)
            staging.rename(self.storage.model_version(name, version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return meta

    def _versions(self, name: str) -> list[dict[str, Any]]:
        found = [read_json(p) for p in self.storage.registry(name).glob("*/meta.json")]
        return sorted((m for m in found if m), key=lambda m: m["version"])

    def _find(self, name: str, artifact: str) -> dict[str, Any] | None:
        return next((m for m in self._versions(name) if m["artifact"] == artifact), None)

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        aliases = read_json(self.storage.registry(name) / "aliases.json") or {}
        return {"uri": uri(self.storage.model_version(name, meta["version"])), "name": name,
                "version": meta["version"], "gates": meta["gates"], "aliases": aliases,
                "versions": [{"version": v["version"], "run_id": v["run_id"],
                              "created": v["created"], "metrics": v["metrics"]}
                             for v in self._versions(name)]}


def _run_dir(artifact: str) -> Path:
    """The training run an `artifact` names, complete."""
    run_dir = path_of(artifact)
    for needed in NEEDED:
        if not (run_dir / needed).exists():
            raise ValueError(f"artifact '{artifact}' is not a finished training run: "
                             f"{run_dir / needed} is missing; set 'artifact: "
                             "${<training_job>.artifact}' of a slurm training job, applied first")
    return run_dir
