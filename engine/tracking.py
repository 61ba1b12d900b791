"""Experiment tracking: each training run and model registration an apply makes, logged
as a run on an MLflow tracking server (`tracking: {mlflow: {...}}` in the stack).

Written once in the engine from what every provider records (the resource's inputs and
its portable outputs), so a stack logs the same runs whatever provider trains it:

- a `training_job`'s run: its inputs as parameters (`hyperparameters.lr`, `algorithm`,
  `seed`, ...; sensitive values never), its held-out `metrics`, and as artifacts the
  files the provider keeps on this machine (the local provider's model artifact,
  metrics, parameters and training log);
- a `model`'s registration: its gate results (each gate's measured value as a metric,
  `gates_passed`), the version's metrics and its model card; a registration refused by
  a gate is logged too, as a failed run carrying the reason.

A run is keyed by the stack, the resource and the training run id or model version
(tag `mlform.key`): applying again logs nothing twice. MLflow is imported only when a
stack configures it (`pip install 'mlform[mlflow]'`), and a tracking server that cannot
be reached never fails an apply: the apply reports it and goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .values import Secret, contains_secret

ARTIFACT_FILES = "tracking_artifacts"
"""Private output a provider may return: {name: local path} of files or folders worth
keeping with the run (the local provider's run directory parts, a model version's card)."""

_PARAM_LIMIT = 6000  # MLflow's longest parameter value


class Tracker:
    """Logs finished training runs and model registrations to one MLflow experiment."""

    def __init__(self, uri: str, experiment: str, stack: str, warn):
        self.uri = uri
        self.experiment = experiment
        self.stack = stack
        self._warn = warn
        self._lock = threading.Lock()
        self._client: Any = None
        self._experiment_id: str | None = None

    @classmethod
    def for_stack(cls, stack, warn) -> Tracker | None:
        """The stack's tracker, None when it configures no tracking."""
        tracking = getattr(stack.file, "tracking", None) if stack is not None else None
        settings = getattr(tracking, "mlflow", None)
        if settings is None:
            return None
        uri = settings.uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        return cls(uri, settings.experiment or stack.name, stack.name, warn)

    # --- what the applier calls -------------------------------------------------------
    def finished(self, rtype: str, name: str, inputs: Mapping[str, Any],
                 outputs: Mapping[str, Any]) -> None:
        """Log a training job's run or a model's registered version (never raises)."""
        if rtype == "training_job" and outputs.get("run_id"):
            self._safely(name, lambda: self._log(
                name, rtype, f"run {outputs['run_id']}", inputs, outputs,
                metrics=_numbers(outputs.get("metrics") or {}), status="FINISHED"))
        elif rtype == "model" and outputs.get("version") is not None:
            gates = outputs.get("gates") or []
            metrics = _numbers(_version_metrics(outputs)) | _gate_metrics(gates)
            self._safely(name, lambda: self._log(
                name, rtype, f"version {outputs['version']}", inputs, outputs,
                metrics=metrics, status="FINISHED"))

    def refused(self, rtype: str, name: str, inputs: Mapping[str, Any], error: str) -> None:
        """Log a model registration a gate refused, as a failed run with the reason."""
        if rtype != "model":
            return
        self._safely(name, lambda: self._log(
            name, rtype, f"refused {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
            inputs, {}, metrics={"gates_passed": 0.0}, status="FAILED",
            extra_tags={"mlform.error": error[:5000]}))

    # --- MLflow -------------------------------------------------------------------------
    def _safely(self, name: str, log) -> None:
        try:
            with self._lock:
                log()
        except Exception as e:  # tracking is a record of the apply, never a reason to fail it
            self._warn(f"{name}: not logged to MLflow at {self.uri or '(no uri)'}: "
                       f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")

    def _connect(self) -> tuple[Any, str]:
        if self._client is None:
            try:
                from mlflow.tracking import MlflowClient
            except ImportError as e:
                raise RuntimeError("the MLflow client is not installed: pip install "
                                   "'mlform[mlflow]'") from e
            if not self.uri:
                raise RuntimeError("set tracking.mlflow.uri or MLFLOW_TRACKING_URI")
            client = MlflowClient(tracking_uri=self.uri)
            found = client.get_experiment_by_name(self.experiment)
            self._experiment_id = found.experiment_id if found else \
                client.create_experiment(self.experiment)
            self._client = client
        assert self._experiment_id is not None
        return self._client, self._experiment_id

    def _log(self, name: str, rtype: str, what: str, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any], metrics: dict[str, float], status: str,
             extra_tags: Mapping[str, str] | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client, experiment_id = self._connect()
        key = f"{self.stack}/{name}/{what}"
        if status == "FINISHED" and client.search_runs(
                [experiment_id], filter_string=f"tags.`mlform.key` = '{_quoted(key)}'",
                max_results=1):
            return  # logged by an earlier apply
        tags = {"mlform.key": key, "mlform.stack": self.stack, "mlform.resource": name,
                "mlform.type": rtype, **_outputs_as_tags(outputs), **(extra_tags or {})}
        run = client.create_run(experiment_id, run_name=f"{name} {what}", tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, v[:_PARAM_LIMIT]) for k, v in _flat_params(inputs)]
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                         params=params[:100], tags=[RunTag("mlform.logged", "1")])
        for chunk in range(100, len(params), 100):  # MLflow takes 100 parameters a batch
            client.log_batch(run_id, params=params[chunk:chunk + 100])
        for label, path in _artifact_files(outputs):
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=label)
            else:
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, status)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _flat_params(inputs: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Each input as `dotted.name` -> text; sensitive values are left out."""
    for key, value in inputs.items():
        if isinstance(value, Secret) or contains_secret(value):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flat_params(value, f"{name}.")
        elif value is not None:
            yield name, value if isinstance(value, str) else _text(value)


def _text(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _version_metrics(outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    version = outputs.get("version")
    for entry in outputs.get("versions") or []:
        if entry.get("version") == version:
            return entry.get("metrics") or {}
    return {}


def _gate_metrics(gates: list[Mapping[str, Any]]) -> dict[str, float]:
    out = {"gates_passed": float(all(g.get("passed") for g in gates))}
    for i, gate in enumerate(gates):
        if isinstance(gate.get("measured"), int | float):
            out[f"gate.{i}.{_metric_name(str(gate.get('gate', i)))}"] = float(gate["measured"])
    return out


def _metric_name(label: str) -> str:
    """What a gate measures, from its label (`auc >= 0.8` -> `auc`), as a metric name."""
    import re

    found = re.match(r"[A-Za-z0-9_]+", label.strip())
    return found.group(0) if found else "measured"


def _outputs_as_tags(outputs: Mapping[str, Any]) -> dict[str, str]:
    keep = ("artifact", "run_id", "uri", "name", "version", "data_version", "code_digest",
            "device")
    return {f"mlform.{k}": str(outputs[k]) for k in keep if outputs.get(k) is not None}


def _artifact_files(outputs: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """(folder in the run, local path) of each file the outputs name on this machine."""
    named = dict(outputs.get(ARTIFACT_FILES) or {})
    if not named:  # a provider that names none: the log and the card, when they are here
        named = {k: outputs[k] for k in ("log", "card") if isinstance(outputs.get(k), str)}
    out = []
    for label, path in named.items():
        local = Path(str(path))
        if local.exists():
            out.append((label, local))
    return out
