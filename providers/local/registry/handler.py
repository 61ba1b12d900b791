"""The local `model`: registers training runs' artifacts as numbered versions.

    registry/<model>/<version>/   artifact/ (a copy), meta.json, card.json, card.md, card.html
    registry/<model>/aliases.json {"champion": 3, "challenger": 4}  (see aliases.py)

A version is registered only when every gate passes on the run's held-out rows;
otherwise the registry is left as it was and apply reports each failed gate.
Registering the same run again returns the version it already has; a create (a
first apply, or a replacement) judges the gates again even then, so a forced
replacement with stricter gates fails before anything changes. A new `artifact`
is an update: the resource (the registry name) stays, a version is added.
Deleting the registry is refused while an endpoint serves one of its versions.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.durations import seconds
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
    ProviderContext,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import contains_unknown, reveal

from ..moves import ModelMoves
from ..paths import SCHEME, LocalPaths, model_uri
from ..training.runs import read_json, write_json
from . import aliases as alias_moves
from . import imported

REPLACE_ON = frozenset({"name"})
REASONS = {"name": "another registry name is another registry"}


class ModelHandler(ModelMoves, ResourceHandler):
    rtype = "model"

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    # --- plan ---------------------------------------------------------------

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, REPLACE_ON, REASONS)
        name = self._name(req.resource.name, req.desired_inputs)
        if contains_unknown(name):
            return base
        planned: dict[str, Any] = {"name": name}
        artifact = req.desired_inputs.get("artifact")
        source_note = ""
        if req.desired_inputs.get("source") is not None:  # bring your own model
            try:
                artifact, source_note = self._source_plan(name, req)
            except ValueError as e:
                return DiffResponse(error=f"model '{req.resource.name}': {e}")
        found = None
        if not contains_unknown(artifact):
            found = self._find(name, str(reveal(artifact)))
            if found:
                planned.update(uri=model_uri(name, found["version"]), version=found["version"])
        note = ""
        if base.changes or req.prior_inputs is None or source_note:
            from mlform.engine.spec.models import Retirement

            rules = Retirement.model_validate(req.desired_inputs.get("retirement") or {})
            moving = tuple(req.desired_inputs.get("aliases", ["champion"]))
            retiring = self._retirement_candidates(name, rules, adding=found is None,
                                                   moving=moving)
            note = "; ".join(f"retires version {m['version']}: {why}; no alias, endpoint or "
                             "batch job uses it" for m, why in retiring)
        note = "; ".join(n for n in (source_note, note) if n)
        return DiffResponse(changes=base.changes, planned_outputs=planned, note=note)

    def _source_plan(self, name: str, req: DiffRequest) -> tuple[Any, str]:
        """The run uri a `source:` registers as (Unknown while its dataset is), and why
        the model changes when only the file's content did."""
        source = req.desired_inputs["source"]
        if contains_unknown(source):
            return source, ""
        source = reveal(source)
        uri = imported.artifact_uri(self.ctx.stack_dir, name, source)
        prior = (req.prior_outputs or {}).get("version")
        if prior is None or req.prior_inputs is None:
            return uri, ""
        before = read_json(self.paths.model_version(name, prior) / "meta.json") or {}
        was = read_json(self.paths.resolve(before["artifact"]) / "params.json") or {} \
            if str(before.get("artifact", "")).startswith(f"{SCHEME}imported/") else {}
        old, new = (was.get("source") or {}).get("version"), \
            imported.file_version(self.ctx.stack_dir, source)
        if old is None or old == new:
            return uri, ""
        return uri, f"model file '{source['path']}' changed: version {old} -> {new}"

    # --- read ---------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        outputs = req.outputs or {}
        name = outputs.get("name") or self._name(req.resource.name, req.inputs or {})
        meta = None
        if outputs.get("version") is not None:
            meta = read_json(self.paths.model_version(name, outputs["version"]) / "meta.json")
        elif req.inputs and not contains_unknown(req.inputs.get("artifact")):
            meta = self._find(name, str(reveal(req.inputs["artifact"])))
        if meta is None:
            detail = f"version {outputs['version']} of model '{name}' is gone from the " \
                     "registry" if outputs.get("version") is not None else ""
            return ObserveResponse(exists=False, detail=detail)
        return ObserveResponse(exists=True, id=name, outputs=self._outputs(name, meta))

    # --- apply --------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource.name, req.inputs, progress, judge_again=True)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource.name, req.inputs, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        name = (req.outputs or {}).get("name") or self._name(req.resource.name, req.inputs)
        served = self._served(name)
        if served:
            where = "; ".join(f"endpoint '{e}' serves version {v}" for v, e in sorted(served))
            return DeleteResponse(error=(
                f"model '{name}' cannot be deleted: {where}. Deleting it would leave the "
                "endpoint nothing to load on its next start; move the endpoint to another "
                "model first, or destroy the endpoint with it"))
        shutil.rmtree(self.paths.registry(name), ignore_errors=True)
        shutil.rmtree(self.paths.imported(name, ""), ignore_errors=True)
        return DeleteResponse()

    def _register(self, resource: str, inputs: dict[str, Any], progress: Progress,
                  judge_again: bool = False) -> ApplyResponse:
        from filelock import FileLock
        from pydantic import ValidationError

        try:
            spec = self.spec(inputs)
        except ValidationError as e:
            from mlform.engine.spec.validation import describe_without_values

            return ApplyResponse(error=f"model '{resource}': {describe_without_values(e)}")
        name = spec.name or resource
        if spec.source is not None:  # bring your own model: the file, laid out as a run
            try:
                spec = spec.model_copy(update={"artifact": imported.materialise(
                    self.paths, self.ctx.stack_dir, name, spec.source.model_dump(), progress)})
            except ValueError as e:
                return ApplyResponse(error=f"model '{resource}': {e}")
        try:
            run_dir = self._run_dir(spec.artifact)
        except ValueError as e:
            return ApplyResponse(error=str(e))
        root = self.paths.registry(name)
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".lock")):
            meta = self._find(name, spec.artifact)
            if meta and judge_again:
                progress(f"run already registered as version {meta['version']}; evaluating "
                         f"{len(spec.gates)} gate(s) on the held-out rows again")
                error = self._judge(name, spec, run_dir, inputs)[1]
                if error:
                    return ApplyResponse(error=error, failure=Failure.GATE_FAILED)
            elif meta:
                progress(f"run already registered as version {meta['version']}")
            else:
                progress(f"evaluating {len(spec.gates)} gate(s) on the held-out rows")
                meta, error = self._add_version(name, spec, run_dir, inputs)
                if error:  # only a failed gate refuses a version
                    return ApplyResponse(error=error, failure=Failure.GATE_FAILED)
                progress(f"registered version {meta['version']}")
            served = {v for v, _ in self._served(name)}
            alias_moves.assign(self.paths, name, spec.aliases, meta["version"],
                               served=bool(served - {meta["version"]}))
            self._retire(name, spec.retirement)
        return ApplyResponse(id=name, outputs=self._outputs(name, meta))

    def _judge(self, name: str, spec, run_dir: Path,
               inputs: dict[str, Any]) -> tuple[tuple, str | None]:
        """(results, predictor, params) of the gates on the run's held-out rows, and the
        error that refuses the registration when one fails."""
        import pandas as pd
        from mlform.engine.redaction import sensitive_gate_bounds
        from mlform.ml.artifact import load_predictor
        from mlform.ml.gates import evaluate_gates

        params = read_json(run_dir / "params.json") or {}
        predictor = load_predictor(run_dir / "artifact")
        holdout = pd.read_parquet(run_dir / "holdout.parquet")
        champion = self._champion(name, spec.artifact) \
            if any(g.better_than for g in spec.gates) else None
        # `spec` holds revealed values; `inputs` still says which of them are sensitive.
        results = evaluate_gates(spec.gates, predictor, holdout, int(params.get("seed") or 0),
                                 sensitive=sensitive_gate_bounds(inputs), champion=champion)
        failed = [r for r in results if not r.passed]
        error = None
        if failed:
            error = (f"model '{name}' was not registered: {len(failed)} of {len(results)} "
                     "gate(s) failed\n  " + "\n  ".join(r.failure() for r in failed))
        return (results, predictor, params), error

    def _champion(self, name: str, artifact: str):
        """The version `better_than: champion` gates compare with: the one the `champion`
        alias names, None when there is none (or it is this very run)."""
        from mlform.ml.artifact import load_predictor
        from mlform.ml.gates import Champion

        version = alias_moves.current(self.paths, name).get("champion")
        if version is None:
            return None
        directory = self.paths.model_version(name, version)
        meta = read_json(directory / "meta.json") or {}
        if meta.get("artifact") == artifact:
            return None
        if not (directory / "artifact").is_dir():
            return f"the champion (version {version}) has no artifact left to compare with"
        return Champion(load_predictor(directory / "artifact"), f"version {version}")

    def _add_version(self, name: str, spec, run_dir: Path,
                     inputs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        from mlform.engine.redaction import sensitive_fields

        from .card import TEXT_FIELDS, build_card, render_markdown
        from .card_html import render_html

        (results, predictor, params), error = self._judge(name, spec, run_dir, inputs)
        if error:
            return {}, error
        versions = self._versions(name)
        version = max((v["version"] for v in versions), default=0) + 1
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        metrics = read_json(run_dir / "metrics.json") or {}
        gates = [r.to_dict() for r in results]
        run = {"job": params.get("job"), "run_id": params.get("run_id"),
               "artifact": spec.artifact}
        meta = {"version": version, "artifact": spec.artifact, "run_id": params.get("run_id"),
                "job": params.get("job"), "data_version": params.get("data", {}).get("version"),
                "metrics": metrics, "created": created, "gates": gates}
        card = build_card(model=name, version=version, created=created, spec=spec, run=run,
                          params=params, metrics=metrics, gates=gates,
                          profile_summary=self._profile_summary(params),
                          artifact_meta=predictor.meta, sensitive=sensitive_fields(inputs, TEXT_FIELDS))
        card["importance"] = self._importance(predictor, run_dir, params)
        root = self.paths.registry(name)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".incoming-"))
        try:
            shutil.copytree(run_dir / "artifact", staging / "artifact")
            (staging / "card.json").write_text(json.dumps(card, indent=1))
            (staging / "card.md").write_text(render_markdown(card))
            (staging / "card.html").write_text(render_html(card))
            (staging / "meta.json").write_text(json.dumps(meta, indent=1))
            staging.rename(self.paths.model_version(name, version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return meta, None

    def _importance(self, predictor, run_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
        """The card's global feature importance (permutation importance on the held-out
        rows); a model it cannot be measured for says why instead of failing to register."""
        import pandas as pd
        from mlform.ml.explain import permutation_importance

        holdout = pd.read_parquet(run_dir / "holdout.parquet")
        try:
            return permutation_importance(predictor, holdout, seed=int(params.get("seed") or 0))
        except ValueError as e:
            return {"method": "permutation", "note": str(e), "features": []}

    def _retire(self, name: str, rules) -> None:
        """Drop the artifacts of old unused versions, as `retirement` says (card kept)."""
        for meta, _ in self._retirement_candidates(name, rules):
            directory = self.paths.model_version(name, meta["version"])
            shutil.rmtree(directory / "artifact", ignore_errors=True)
            write_json(directory / "meta.json",
                       {**meta, "retired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _retirement_candidates(self, name: str, rules, adding: bool = False,
                               moving: tuple[str, ...] = ()) -> list[tuple[dict[str, Any], str]]:
        """Versions `retirement` would retire and why; `adding` counts a version about to
        be registered as the newest, taking the aliases in `moving` with it. A version an
        alias, an endpoint or a batch job uses is never retired."""
        if rules.keep_last is None and rules.retire_after is None:
            return []
        aliases = read_json(self.paths.registry(name) / "aliases.json") or {}
        aliased = {v for a, v in aliases.items() if not (adding and a in moving)}
        used = self._in_use(name)
        live = [v for v in self._versions(name) if not v.get("retired")]
        newest_first = sorted(live, key=lambda v: v["version"], reverse=True)
        now = time.time()
        out = []
        for rank, meta in enumerate(newest_first, start=1 if adding else 0):
            if meta["version"] in aliased or meta["version"] in used or rank == 0:
                continue
            age = now - time.mktime(time.strptime(meta["created"], "%Y-%m-%dT%H:%M:%SZ")) \
                + time.timezone
            if rules.keep_last is not None and rank >= rules.keep_last:
                why = f"beyond keep_last {rules.keep_last}"
            elif rules.retire_after is not None and age > seconds(rules.retire_after):
                why = f"older than retire_after {rules.retire_after}"
            else:
                continue
            out.append((meta, why))
        return out

    def _in_use(self, name: str) -> set[int]:
        """Versions of `name` that an endpoint serves or a batch job scored with."""
        uris = [(read_json(meta) or {}).get("model", "")
                for meta in self.paths.root.glob("batch/*/*/meta.json")]
        return {v for v, _ in self._served(name)} | _versions_of(name, uris)

    def _served(self, name: str) -> set[tuple[int, str]]:
        """(version, endpoint) of each version of `name` that a local endpoint serves. An
        endpoint that was deleted keeps its config.json beside its logs but has no
        server.json: it serves nothing."""
        found = set()
        for config in self.paths.root.glob("endpoints/*/config.json"):
            if not (config.parent / "server.json").exists():
                continue
            doc = read_json(config) or {}
            uris = [v.get("model", "") for group in ("stable", "canary")
                    for v in (doc.get(group) or {}).values()]
            found |= {(v, config.parent.name) for v in _versions_of(name, uris)}
        return found

    # --- helpers ------------------------------------------------------------

    def _name(self, resource: str, inputs: dict[str, Any]) -> str:
        return inputs.get("name") or resource

    def _run_dir(self, artifact: str) -> Path:
        if artifact.startswith("file://"):
            # A run another provider left on a filesystem this machine shares (a slurm
            # training job's), in a local run's layout: registered and served here.
            from urllib.parse import unquote, urlparse

            run_dir = Path(unquote(urlparse(artifact).path))
        elif artifact.startswith((f"{SCHEME}runs/", f"{SCHEME}imported/")):
            run_dir = self.paths.resolve(artifact)
        else:
            raise ValueError(f"artifact '{artifact}' is not a local training run; set "
                             "'artifact: ${<training_job>.artifact}' (a local training job's, "
                             "or a file:// run of a slurm training job)")
        for needed in ("artifact/model.json", "holdout.parquet", "params.json"):
            if not (run_dir / needed).exists():
                raise ValueError(f"artifact '{artifact}' is incomplete: {run_dir / needed} "
                                 "is missing; apply its training job first")
        return run_dir

    def _versions(self, name: str) -> list[dict[str, Any]]:
        found = [read_json(p) for p in self.paths.registry(name).glob("*/meta.json")]
        return sorted((m for m in found if m), key=lambda m: m["version"])

    def _find(self, name: str, artifact: str) -> dict[str, Any] | None:
        return next((m for m in self._versions(name)
                     if m["artifact"] == artifact and not m.get("retired")), None)

    def _profile_summary(self, params: dict[str, Any]) -> dict[str, Any] | None:
        from mlform.ml.profile import summary

        uri = params.get("data", {}).get("uri")
        if not uri or not uri.startswith(SCHEME):  # another provider's data: no profile here
            return None
        profile = read_json(self.paths.resolve(uri) / "profile.json")
        return summary(profile) if profile else None

    def _outputs(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        version = meta["version"]
        aliases = alias_moves.current(self.paths, name)
        return {
            "uri": model_uri(name, version), "name": name, "version": version,
            "card": str(self.paths.model_version(name, version) / "card.md"),
            "gates": meta["gates"], "aliases": aliases,
            "pending_aliases": alias_moves.pending(self.paths, name),
            # private: what experiment tracking keeps with the registration (the artifact,
            # the card and the gate results; engine/tracking.py)
            "tracking_artifacts": {"registered": str(self.paths.model_version(name, version))},
            "versions": [{"version": v["version"], "run_id": v["run_id"],
                          "created": v["created"], "metrics": v["metrics"],
                          "aliases": sorted(a for a, n in aliases.items() if n == v["version"]),
                          "retired": v.get("retired")}
                         for v in self._versions(name)],
        }



def _versions_of(name: str, uris: list[str]) -> set[int]:
    prefix = model_uri(name, 0)[:-1]
    return {int(u[len(prefix):]) for u in uris
            if u.startswith(prefix) and u[len(prefix):].isdigit()}
