"""The `monitor` resource on this machine: its configuration on disk, and the
evaluation that `mlform watch` runs on schedule (and, for a batch job's output, as
soon as the job holds a new one).

    monitors/<name>/config.json              the inputs, as last applied
    monitors/<name>/evaluations/<time>.json  one file per evaluation (`mlform.ml.monitoring`)
    monitors/<name>/report.html              the newest evaluation, for people

Outputs: `report` (path of report.html), `evaluations` (the folder) and
`last_evaluation` (None until the first evaluation; its shape is every provider's,
see `mlform.ml.monitoring.outcome`, with `evaluation` and `report` as paths here).

The evaluation itself is `mlform.ml.monitoring`'s: this handler only reads the
endpoint's request and feedback logs (`traffic`) or a batch job's output
(`batch_output`) and writes the evaluation and its report.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlform.engine import durations
from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    ProviderContext,
    TickRequest,
    TickResponse,
    UpdateRequest,
    default_diff,
)
from mlform.engine.spec.models import Monitor
from pydantic import ValidationError

from ..paths import SCHEME, LocalPaths
from .batch_output import BatchOutput, feature_columns, locate, read_batch_output

CONFIG = "config.json"
EVALUATIONS = "evaluations"
REPORT = "report.html"
DATA_FILES = ("data.parquet", "data.csv")


class MonitorHandler(ResourceHandler):
    rtype = "monitor"

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import sensitive_problems

        problems = sensitive_problems(
            req.inputs, "monitor", "its config.json",
            help="use a value that is not sensitive: a monitor's settings and tags are "
                 "kept on disk in plain text")
        return CheckResponse(problems=problems + _known_problems(req))

    def diff(self, req: DiffRequest) -> DiffResponse:
        return default_diff(req)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        config = self.paths.monitor(name) / CONFIG
        if not config.exists():
            return ObserveResponse(exists=False)
        last = (req.outputs or {}).get("last_evaluation")
        return ObserveResponse(exists=True, id=name,
                               inputs=json.loads(config.read_text(encoding="utf-8")),
                               outputs=self._outputs(name, last))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._configure(req.resource.name, req.inputs, last=None)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._configure(req.resource.name, req.inputs,
                               last=(req.prior_outputs or {}).get("last_evaluation"))

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.paths.monitor(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def tick(self, req: TickRequest) -> TickResponse:
        name = req.resource.name
        try:
            monitor = _monitor(req.inputs)
        except ValueError as err:
            return TickResponse(error=str(err))
        try:
            output = (locate(self.paths, monitor.batch_job, req.stack_outputs)
                      if monitor.batch_job else None)
            last = (req.outputs or {}).get("last_evaluation")
            if last and not _due(monitor, last, req.now, output):
                return TickResponse()
            evaluation = self._evaluate(name, monitor, req.now, output)
        except (OSError, ValueError) as err:
            return TickResponse(error=f"monitor '{name}' could not evaluate: {err}")
        directory = self.paths.monitor(name)
        stamp = datetime.fromtimestamp(req.now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stored = directory / EVALUATIONS / f"{stamp}.json"
        _write(stored, json.dumps(evaluation, indent=2, sort_keys=True))
        from mlform.ml.monitoring import outcome
        from mlform.ml.monitoring.report import html

        report = directory / REPORT
        _write(report, html(evaluation))
        summary = outcome.last_evaluation(evaluation, str(stored), str(report))
        return TickResponse(outputs={**(req.outputs or {}), **self._outputs(name, summary)},
                            breach=outcome.breach(evaluation),
                            events=[outcome.event(name, evaluation, str(report))])

    def _evaluate(self, name: str, monitor: Monitor, now: float,
                  output: BatchOutput | None) -> dict[str, Any]:
        from mlform.ml.monitoring.evaluate import evaluate, read_reference

        reference = read_reference(self.paths.resolve(monitor.reference))
        if output is None:
            from mlform.ml.serving.traffic import read_traffic

            traffic = read_traffic(self.paths.endpoint(monitor.endpoint))
            return evaluate(monitor, traffic, reference, now, name=name)
        features = feature_columns(output, list(reference.columns), monitor.features)
        # twice the window: the rows before it are the baseline of the output drift
        traffic = read_batch_output(output, features, 2 * monitor.window_rows)
        return evaluate(monitor, traffic, reference, now, name=name, batch_output=output.uri)

    def _configure(self, name: str, inputs: dict[str, Any],
                   last: dict[str, Any] | None) -> ApplyResponse:
        try:
            monitor = _monitor(inputs)
            self._check(monitor)
        except ValueError as err:
            return ApplyResponse(error=f"monitor '{name}': {err}")
        _write(self.paths.monitor(name) / CONFIG, json.dumps(inputs, indent=2, sort_keys=True))
        return ApplyResponse(id=name, outputs=self._outputs(name, last))

    def _check(self, monitor: Monitor) -> None:
        """What a tick would otherwise find wrong at its first evaluation."""
        if not monitor.reference.startswith(SCHEME):
            raise ValueError(f"reference '{monitor.reference}' is not a dataset of the local "
                             "provider: use a dataset's uri, such as '${transactions.uri}'")
        directory = self.paths.resolve(monitor.reference)
        data = next((directory / f for f in DATA_FILES if (directory / f).exists()), None)
        if data is None:
            raise ValueError(f"reference dataset '{monitor.reference}' not found at "
                             f"'{directory}': apply the dataset first")
        from mlform.ml.monitoring.performance import METRICS

        if monitor.performance and monitor.performance.metric not in METRICS:
            raise ValueError(f"unknown performance metric '{monitor.performance.metric}': "
                             f"use one of {', '.join(sorted(METRICS))}")
        columns = _column_names(data)
        missing = sorted(set(monitor.features or ()) - set(columns))
        if missing:
            raise ValueError(f"feature(s) {', '.join(repr(m) for m in missing)} not in the "
                             f"reference dataset '{monitor.reference}'")
        if monitor.batch_job:
            feature_columns(locate(self.paths, monitor.batch_job), columns, monitor.features)

    def _outputs(self, name: str, last: dict[str, Any] | None) -> dict[str, Any]:
        directory = self.paths.monitor(name)
        return {"report": str(directory / REPORT), "evaluations": str(directory / EVALUATIONS),
                "last_evaluation": last}


def _known_problems(req: CheckRequest) -> list[Problem]:
    """What `_check` would refuse at apply, where plan can tell already: an unknown
    performance metric, features that are not columns of the reference dataset."""
    from mlform.engine.diagnostics import did_you_mean

    problems = []
    metric = (req.inputs.get("performance") or {}).get("metric")
    if isinstance(metric, str):
        from mlform.ml.monitoring.performance import (
            METRICS,  # numpy: only for monitors that judge performance
        )

        if metric not in METRICS:
            hint = did_you_mean(metric, METRICS)
            problems.append(Problem(("performance", "metric"),
                                    f"unknown performance metric '{metric}'",
                                    help=(hint + " " if hint else "")
                                    + f"metrics: {', '.join(sorted(METRICS))}"))
    columns = (req.upstream.get("reference") or {}).get("columns")
    features = req.inputs.get("features")
    if isinstance(columns, list) and columns and isinstance(features, list):
        for i, feature in enumerate(features):
            if isinstance(feature, str) and feature not in columns:
                hint = did_you_mean(feature, columns)
                problems.append(Problem(("features", i), f"feature '{feature}' is not a "
                                        "column of the reference dataset",
                                        help=(hint + " " if hint else "")
                                        + f"its columns: {', '.join(map(str, columns))}"))
    return problems


def _monitor(inputs: dict[str, Any]) -> Monitor:
    try:
        return Monitor.model_validate({**inputs, "type": "monitor"})
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{where}: {message}" if where else message) from err


def _due(monitor: Monitor, last: dict[str, Any], now: float,
         output: BatchOutput | None) -> bool:
    """The schedule has passed since the last evaluation, or the batch job holds an output
    that was not evaluated yet: a new output is judged when it appears, not hours later."""
    return (now - last["t"] >= durations.seconds(monitor.schedule)
            or (output is not None and output.uri != last.get("batch_output")))


def _column_names(data: Path) -> list[str]:
    if data.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(data).names)
    import pandas as pd

    return list(pd.read_csv(data, nrows=0).columns)


def _write(path: Path, text: str) -> None:
    """Replace `path` at once, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
