"""Monitors: an endpoint's request and feedback logs on the shared storage, evaluated
against the reference dataset by `mlform.ml.monitoring` on each `mlform watch` pass,
exactly as the local provider evaluates its own (the router writes the local
provider's rows, read back by `mlform.ml.serving.traffic`): the same numbers for the
same rows.

    <storage>/<stack>/monitors/<name>/config.json              the inputs, as applied
    <storage>/<stack>/monitors/<name>/evaluations/<time>.json  one per evaluation
    <storage>/<stack>/monitors/<name>/report.html              the newest, for people

A monitor watches an endpoint (`${endpoint.id}`); batch output is not monitored here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlform.engine import durations
from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
)
from pydantic import ValidationError

from .handler import RayHandler
from .paths import SCHEME, read_json, write_json

CONFIG = "config.json"
EVALUATIONS = "evaluations"
REPORT = "report.html"


class MonitorHandler(RayHandler):
    rtype = "monitor"

    def _dir(self, name: str) -> Path:
        return self.paths.root / "monitors" / name

    def _endpoint_dir(self, endpoint: str) -> Path:
        """Where the endpoint's router logs its requests (see `endpoint`)."""
        return self.paths.root / "endpoints" / endpoint

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        inputs = read_json(self._dir(name) / CONFIG)
        if inputs is None:
            return ObserveResponse(exists=False)
        last = (req.outputs or {}).get("last_evaluation")
        return ObserveResponse(exists=True, id=name, inputs=inputs,
                               outputs=self._outputs(name, last))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._configure(req.resource.name, req.inputs, None)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._configure(req.resource.name, req.inputs,
                               (req.prior_outputs or {}).get("last_evaluation"))

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        import shutil

        shutil.rmtree(self._dir(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def tick(self, req: TickRequest) -> TickResponse:
        from mlform.ml.monitoring import outcome
        from mlform.ml.monitoring.evaluate import evaluate, read_reference
        from mlform.ml.monitoring.report import html
        from mlform.ml.serving.traffic import read_traffic

        name = req.resource.name
        try:
            spec = self._spec(req.inputs)
            last = (req.outputs or {}).get("last_evaluation")
            if last and req.now - last["t"] < durations.seconds(spec.schedule):
                return TickResponse()
            reference = read_reference(self.paths.resolve(str(spec.reference)))
            traffic = read_traffic(self._endpoint_dir(str(spec.endpoint)))
            evaluation = evaluate(spec, traffic, reference, req.now, name=name)
        except (OSError, ValueError) as err:
            return TickResponse(error=f"monitor '{name}' could not evaluate: {err}")
        stamp = datetime.fromtimestamp(req.now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stored = self._dir(name) / EVALUATIONS / f"{stamp}.json"
        _write(stored, json.dumps(evaluation, indent=2, sort_keys=True))
        report = self._dir(name) / REPORT
        _write(report, html(evaluation))
        summary = outcome.last_evaluation(evaluation, str(stored), str(report))
        return TickResponse(outputs={**(req.outputs or {}), **self._outputs(name, summary)},
                            breach=outcome.breach(evaluation),
                            events=[outcome.event(name, evaluation, str(report))])

    def _spec(self, inputs: dict[str, Any]) -> Any:
        try:
            spec = self.spec(inputs)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            raise ValueError(first["msg"].removeprefix("Value error, ")) from None
        if not spec.endpoint:
            raise ValueError("on ray a monitor watches an endpoint: set 'endpoint' to an "
                             "endpoint's id, such as '${fraud_endpoint.id}'")
        return spec

    def _configure(self, name: str, inputs: dict[str, Any],
                   last: dict[str, Any] | None) -> ApplyResponse:
        try:
            spec = self._spec(inputs)
            reference = str(spec.reference)
            if not reference.startswith(SCHEME):
                raise ValueError(f"reference '{reference}' is not a dataset of the ray "
                                 "provider: use a dataset's uri, such as '${transactions.uri}'")
            directory = self.paths.resolve(reference)
            if not any((directory / f).exists() for f in ("data.parquet", "data.csv")):
                raise ValueError(f"reference dataset '{reference}' not found at "
                                 f"'{directory}': apply the dataset first")
            from mlform.ml.monitoring.performance import METRICS

            if spec.performance and spec.performance.metric not in METRICS:
                raise ValueError(f"unknown performance metric '{spec.performance.metric}': "
                                 f"use one of {', '.join(sorted(METRICS))}")
        except ValueError as err:
            return ApplyResponse(error=f"monitor '{name}': {err}")
        write_json(self._dir(name) / CONFIG, inputs)
        return ApplyResponse(id=name, outputs=self._outputs(name, last))

    def _outputs(self, name: str, last: dict[str, Any] | None) -> dict[str, Any]:
        directory = self._dir(name)
        return {"report": str(directory / REPORT), "evaluations": str(directory / EVALUATIONS),
                "last_evaluation": last}


def _write(path: Path, text: str) -> None:
    """Replace `path` at once, so a reader never sees half a file."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
