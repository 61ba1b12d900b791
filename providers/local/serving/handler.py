"""The `endpoint` resource on this machine: a detached HTTP server per endpoint.

create starts the server (or adopts the one already running for the endpoint),
update moves traffic to new variants by the rollout strategy and rolls back on
a breached bound, observe reads the live server back, delete stops it. The id
of an endpoint is its resource name; its files are in `LocalPaths.endpoint(name)`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from mlform.engine.dispatch import ResourceHandler
from mlform.engine.durations import seconds
from mlform.engine.provider import (
    ApplyResponse,
    AttributeChange,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    Failure,
    InvokeRequest,
    InvokeResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    ProviderContext,
    TickRequest,
    TickResponse,
    UpdateRequest,
    default_diff,
)
from mlform.engine.spec.models import Endpoint, EndpointLimits, RequestLogging, Variant
from mlform.engine.values import contains_unknown, display, reveal
from pydantic import ValidationError

from ..paths import LocalPaths
from . import process
from .client import ControlError, ServerClient
from .config import CONFIG_FILE, ServingConfig, serving_config, traffic, write_config
from .rollout import roll_out, traffic_steps

PORT_REASON = ("the server listens on a fixed port: changing it starts a new server at the "
               "new address")
VARIANT_DEFAULTS = {name: f.default for name, f in Variant.model_fields.items()
                    if name != "model"}
LOGGING_DEFAULTS = {name: f.default for name, f in RequestLogging.model_fields.items()}
LIMITS_DEFAULTS = {name: f.default for name, f in EndpointLimits.model_fields.items()}
LOADING = "loading"
"""The status /health answers while a server loads its models (see `app`)."""


class EndpointHandler(ResourceHandler):
    rtype = "endpoint"

    start_timeout = 60.0
    """Seconds a new server has to load its models and answer /health."""
    stop_timeout = 10.0

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    # --- plan -----------------------------------------------------------------

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import plain_model_problems

        return CheckResponse(problems=plain_model_problems(
            req.inputs.get("variants"), lambda model: model.startswith("local://")))

    def diff(self, req: DiffRequest) -> DiffResponse:
        desired = reveal(req.desired_inputs)
        spec = None
        if not contains_unknown(desired):
            try:
                spec = _endpoint(desired)
                traffic_steps(spec.rollout)
            except (ValidationError, ValueError) as e:
                return DiffResponse(error=f"endpoint '{req.resource.name}': {_said(e)}")
        base = default_diff(req, replace_on=frozenset({"port"}), reasons={"port": PORT_REASON})
        strategy = (desired.get("rollout") or {}).get("strategy", "all_at_once")
        changes = [_explained(c, strategy) for c in base.changes]
        replacing = req.prior_inputs is None or bool(base.requires_replace)
        planned: dict[str, Any] = {"name": req.resource.name}
        if not replacing:
            prior = req.prior_outputs or {}
            planned |= {k: prior[k] for k in ("url", "port") if k in prior}
            if not changes:
                planned |= {k: prior[k] for k in ("pid", "traffic") if k in prior}
        elif isinstance(desired.get("port"), int):
            planned |= {"port": desired["port"], "url": _url(desired["port"])}
        if spec is not None:
            planned["traffic"] = traffic([(spec.variants, 100.0)])
        return DiffResponse(changes=changes, planned_outputs=planned)

    # --- read -----------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        directory = self.paths.endpoint(name)
        record = process.read_record(directory)
        if record is None:
            return ObserveResponse(exists=False, detail="no server was started for this endpoint")
        if process.recorded(directory, record) is None:
            return ObserveResponse(
                exists=False,
                detail=f"the server (pid {record.pid}, port {record.port}) is not running; "
                       f"the end of {directory / process.LOG_FILE}:\n"
                       f"{process.log_tail(directory)}")
        with self._client(directory, record, timeout=3.0) as client:
            try:
                status, health = client.health()
                if health.get("status") == LOADING:
                    # a server started by an interrupted apply is starting, not unhealthy:
                    # what it serves is known once its models are loaded
                    self._wait_ready(name, record)
                    status, health = client.health()
                live = client.config()
            except (httpx.HTTPError, ControlError) as e:
                return ObserveResponse(
                    exists=True, id=name, healthy=False,
                    outputs={**(req.outputs or {}), **_address(name, record)},
                    detail=f"the server (pid {record.pid}) does not answer on port "
                           f"{record.port}: {e}")
        notes = [] if status == 200 else [f"/health answers {status}: {health.get('error')}"]
        gone = _gone_models(live)
        if gone:
            # it still answers from memory, but a restart would find nothing to load
            status = status if status != 200 else 0
            notes.append(f"it serves {', '.join(gone)}, which no longer exist in the "
                         "registry (deleted or retired): its next start would fail")
        if live.canary:
            notes.append(f"a rollout was interrupted with {live.canary_percent:g}% of requests "
                         "on new variants; the next apply finishes or repeats it")
        return ObserveResponse(
            exists=True, id=name, healthy=status == 200, detail="; ".join(notes),
            inputs=_live_inputs(req.inputs or {}, live, record),
            outputs=_outputs(name, record, live) | _verdict_kept(req.outputs, req.inputs))

    # --- write ----------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        name = req.resource.name
        try:
            spec, config = self._configured(name, req.inputs)
        except ValueError as e:
            return ApplyResponse(error=str(e))
        directory = self.paths.endpoint(name)
        directory.mkdir(parents=True, exist_ok=True)
        record = process.read_record(directory)
        self._stop_strays(directory, record, progress)
        if record is not None and process.recorded(directory, record) is not None:
            adopted = self._adopt(name, record, spec, config, progress)
            if adopted is not None:
                return _settle_aliases(self.paths, adopted, config, config)
            progress(f"stopping the server that runs on port {record.port} to start anew")
            process.stop(directory, record, self.stop_timeout)
        started = self._start(name, spec, config, record, progress)
        return _settle_aliases(self.paths, started, config, config)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        name = req.resource.name
        try:
            spec, config = self._configured(name, req.inputs)
        except ValueError as e:
            return ApplyResponse(error=str(e))
        directory = self.paths.endpoint(name)
        record = process.read_record(directory)
        running = record is not None and process.recorded(directory, record) is not None
        if not running or (spec.port is not None and spec.port != record.port):
            # nothing is served, so there is no traffic to move carefully
            progress("the server is not running: starting it with the new variants")
            return self.create(CreateRequest(req.resource, req.inputs, ""), progress)
        with self._client(directory, record) as client:
            try:
                live = client.config()
            except (httpx.HTTPError, ControlError) as e:
                return ApplyResponse(error=f"the server (pid {record.pid}) does not answer on "
                                           f"port {record.port}: {e}")
            if live.stable == config.stable:
                # same variants: settings (logging, threads) change at once
                if live != config:
                    try:
                        client.serve(config)
                    except (httpx.HTTPError, ControlError) as e:
                        return ApplyResponse(error=f"endpoint '{name}': the server refused the "
                                                   f"new settings: {e}")
                return ApplyResponse(id=name, outputs=_outputs(name, record, config)
                                     | _verdict_kept(req.prior_outputs, spec))
            progress(f"moving traffic by {spec.rollout.strategy}: "
                     f"{_describe_change(live.stable, config.stable)}")
            outcome = roll_out(client, live, config, spec.rollout, spec.rollback, progress)
        served = outcome.served or (live.settled() if outcome.error else config)
        _settle_aliases(self.paths, None, config, served)
        return ApplyResponse(id=name, outputs=_outputs(name, record, served)
                             | _verdict_kept(req.prior_outputs, spec),
                             error=outcome.error, detail=outcome.detail,
                             failure=Failure.ROLLED_BACK if outcome.rolled_back else None)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        directory = self.paths.endpoint(req.resource.name)
        record = process.read_record(directory)
        self._stop_strays(directory, record, progress)
        try:
            # every server of the endpoint, recorded or not; the files stay while one runs
            stopped = process.stop(directory, record, self.stop_timeout)
        except TimeoutError as e:
            return DeleteResponse(error=f"endpoint '{req.resource.name}': {e}")
        if stopped:
            progress(f"stopped the server (pid {', '.join(map(str, stopped))})")
        if record is None:
            shutil.rmtree(directory, ignore_errors=True)
            return DeleteResponse()
        process.record_path(directory).unlink(missing_ok=True)
        if record.pid == (req.outputs or {}).get("pid"):
            # Its files (config, request and feedback logs, server log) go with it, as a
            # cloud endpoint's do; a replacement started in the same folder keeps them.
            shutil.rmtree(directory, ignore_errors=True)
        return DeleteResponse()

    def invoke(self, req: InvokeRequest) -> InvokeResponse:
        """`POST /predict` on the endpoint's server, as its clients call it."""
        url = (req.outputs or {}).get("url")
        if not url:
            return InvokeResponse(error=f"endpoint '{req.resource.name}' has no recorded url",
                                  status=503)
        try:
            r = httpx.post(f"{url}/predict", json={"instances": req.instances},
                           timeout=req.timeout)
        except httpx.HTTPError as e:
            return InvokeResponse(error=f"endpoint '{req.resource.name}' at {url}: {e}",
                                  status=503)
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code != 200:
            return InvokeResponse(error=f"endpoint '{req.resource.name}' answered "
                                        f"{r.status_code}: {body.get('error') or r.text[:200]}",
                                  status=r.status_code)
        return InvokeResponse(predictions=list(body.get("predictions") or []))

    def tick(self, req: TickRequest) -> TickResponse | None:
        """An experiment's verdict over the endpoint's logged requests and feedback."""
        from mlform.ml.experiments.measure import measure

        spec = _endpoint(reveal(req.inputs))
        if spec.experiment is None:
            return None
        directory = self.paths.endpoint(req.resource.name)
        verdict = measure(spec.experiment.model_dump(), spec.variants, directory,
                          now=req.now, serving=self._serving_stats(directory))
        return TickResponse(outputs={"experiment": verdict}, events=[verdict["summary"]])

    def _serving_stats(self, directory: Path) -> dict[str, dict]:
        """Requests, errors and p99 latency per variant since the server started (what
        its rollouts judge); empty when it does not run or answer."""
        from mlform.ml.experiments.measure import serving_stats

        record = process.read_record(directory)
        if record is None or process.recorded(directory, record) is None:
            return {}
        try:
            with self._client(directory, record, timeout=3.0) as client:
                return serving_stats(client.stats(0.0)["tracks"])
        except (httpx.HTTPError, ControlError, KeyError):
            return {}

    def running_servers(self) -> list[tuple[str, str]]:
        """("endpoint", id) of each server running under this data directory. A
        server no record names (an apply was killed before writing it) has an id
        that says so, which no state holds: drift reports it as an orphan even
        when its endpoint is in the state."""
        root = self.paths.endpoints()
        found = []
        for directory in sorted(root.iterdir()) if root.is_dir() else ():
            record = process.read_record(directory)
            if process.recorded(directory, record) is not None:
                found.append(("endpoint", directory.name))
            found.extend(("endpoint", f"{directory.name} (server pid {proc.pid}, never "
                                      "recorded)") for proc in process.strays(directory, record))
        return found

    # --- helpers --------------------------------------------------------------

    def _configured(self, name: str, inputs: dict[str, Any]) -> tuple[Endpoint, ServingConfig]:
        """The endpoint's spec and what its server is to serve; ValueError naming the
        endpoint when the inputs cannot be served (a missing model, bad rollout steps)."""
        try:
            spec = _endpoint(reveal(inputs))
            config = serving_config(name, spec, self.paths)
            traffic_steps(spec.rollout)
        except (ValidationError, ValueError) as e:
            raise ValueError(f"endpoint '{name}': {_said(e)}") from None
        return spec, config

    @staticmethod
    def _client(directory: Path, record: process.ServerRecord,
                timeout: float = 5.0) -> ServerClient:
        return ServerClient(record.port, process.read_token(directory), timeout=timeout)

    def _stop_strays(self, directory: Path, record: process.ServerRecord | None,
                     progress: Progress) -> None:
        """Servers an interrupted apply started but never recorded serve nothing
        mlform knows of and may hold the endpoint's port."""
        if not directory.is_dir():
            return
        for pid in process.stop_strays(directory, record, self.stop_timeout):
            progress(f"stopped server pid {pid}, which an interrupted apply started "
                     "and never recorded")

    def _adopt(self, name: str, record: process.ServerRecord, spec: Endpoint,
               config: ServingConfig, progress: Progress) -> ApplyResponse | None:
        """Take over the server already running for this endpoint (an earlier apply
        started it and stopped before recording it); None when it cannot serve this spec."""
        if spec.port is not None and spec.port != record.port:
            return None
        if self._wait_ready(name, record) is not None:
            return None
        with self._client(self.paths.endpoint(name), record) as client:
            try:
                if client.config() != config:
                    client.serve(config)
            except (httpx.HTTPError, ControlError):
                return None
        progress(f"adopted the running server (pid {record.pid}) on port {record.port}")
        return ApplyResponse(id=name, outputs=_outputs(name, record, config))

    def _start(self, name: str, spec: Endpoint, config: ServingConfig,
               previous: process.ServerRecord | None, progress: Progress) -> ApplyResponse:
        directory = self.paths.endpoint(name)
        write_config(directory / CONFIG_FILE, config)
        # a restarted endpoint keeps its address when it can
        ports = [spec.port] if spec.port is not None else \
            ([previous.port] if previous else []) + [0]
        for port in ports:
            try:
                record = process.spawn(directory, port, config.digest())
                break
            except OSError as e:
                if port == ports[-1]:
                    return ApplyResponse(error=f"endpoint '{name}': cannot listen on "
                                               f"127.0.0.1:{port}: {e}")
        progress(f"started the server (pid {record.pid}) on port {record.port}; "
                 "loading the models")
        failure = self._wait_ready(name, record)
        if failure is not None:
            process.stop(directory, record, self.stop_timeout)
            process.record_path(directory).unlink(missing_ok=True)
            return ApplyResponse(error=f"endpoint '{name}': {failure}")
        progress(f"serving at {_url(record.port)}")
        return ApplyResponse(id=name, outputs=_outputs(name, record, config))

    def _wait_ready(self, name: str, record: process.ServerRecord) -> str | None:
        """None once /health answers 200; otherwise why the server is not serving."""
        directory = self.paths.endpoint(name)
        deadline = time.monotonic() + self.start_timeout
        with self._client(directory, record, timeout=2.0) as client:
            while True:
                if process.recorded(directory, record) is None:
                    return ("the server exited while starting; the end of server.log:\n"
                            + process.log_tail(directory))
                try:
                    status, body = client.health()
                    if status == 200:
                        return None
                    if body.get("status") == "failed":
                        return f"the server could not load its models: {body.get('error')}"
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    return (f"the server did not answer /health within {self.start_timeout:g}s;"
                            " the end of server.log:\n" + process.log_tail(directory))
                time.sleep(0.1)


def _settle_aliases(paths: LocalPaths, response: ApplyResponse | None, target: ServingConfig,
                    served: ServingConfig) -> ApplyResponse | None:
    """Model aliases follow what is served: moves waiting on the target's versions are made
    when it is served, and dropped (aliases moved back) when it was rolled back."""
    from ..registry import aliases

    if response is not None and response.error:
        return response
    served_uris = [v.model for v in served.stable.values()]
    if served is target:
        aliases.rollout_completed(paths, served_uris)
    else:
        rejected = {v.model for v in target.stable.values()} - set(served_uris)
        aliases.rolled_back(paths, rejected, served_uris)
    return response


def _gone_models(live: ServingConfig) -> list[str]:
    variants = [*live.stable.values(), *(live.canary or {}).values()]
    return sorted({v.model for v in variants if not Path(v.path).is_dir()})


def _said(exc: Exception) -> str:
    """The error in words; a validation error without the (revealed) input values."""
    from mlform.engine.spec.validation import describe_without_values

    return describe_without_values(exc) if isinstance(exc, ValidationError) else str(exc)


def _verdict_kept(prior: dict[str, Any] | None, inputs: Endpoint | dict[str, Any] | None
                  ) -> dict[str, Any]:
    """The recorded verdict of the experiment the endpoint still runs: an update or a
    refresh keeps it (a promoted winner stays promoted); a new experiment name drops it."""
    verdict = (prior or {}).get("experiment")
    if isinstance(inputs, Endpoint):
        name = inputs.experiment.name if inputs.experiment else None
    else:
        name = ((inputs or {}).get("experiment") or {}).get("name")
    if name and isinstance(verdict, dict) and verdict.get("name") == name:
        return {"experiment": verdict}
    return {}


def _endpoint(inputs: dict[str, Any]) -> Endpoint:
    return Endpoint.model_validate({**inputs, "type": "endpoint"})


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _address(name: str, record: process.ServerRecord) -> dict[str, Any]:
    return {"name": name, "url": _url(record.port), "port": record.port, "pid": record.pid}


def _outputs(name: str, record: process.ServerRecord, config: ServingConfig) -> dict[str, Any]:
    return {**_address(name, record), "traffic": config.traffic()}


def _explained(change: AttributeChange, strategy: str) -> AttributeChange:
    """Say in words what a variant change does to the traffic."""
    parts = change.path.split(".")
    if parts[0] != "variants" or len(parts) < 2:
        return change
    variant = parts[1]
    if len(parts) == 2:
        reason = (f"variant '{variant}' is added" if change.before is None else
                  f"variant '{variant}' is removed" if change.after is None else
                  f"variant '{variant}' changes")
    elif parts[2] == "model":
        reason = (f"variant '{variant}' changes model version: {display(change.before)} -> "
                  f"{display(change.after)}")
    else:
        reason = (f"variant '{variant}' {parts[2]}: {display(change.before)} -> "
                  f"{display(change.after)}")
    return AttributeChange(change.path, change.before, change.after, change.forces_replacement,
                           f"{reason}; traffic moves by {strategy} rollout")


def _describe_change(old: dict, new: dict) -> str:
    words = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            words.append(f"'{name}' removed")
        elif name not in old:
            words.append(f"'{name}' added ({new[name].model})")
        elif old[name].model != new[name].model:
            words.append(f"'{name}' {old[name].model} -> {new[name].model}")
        elif old[name] != new[name]:
            words.append(f"'{name}' weight {old[name].weight} -> {new[name].weight}")
    return ", ".join(words)


def _live_inputs(recorded: dict[str, Any], live: ServingConfig,
                 record: process.ServerRecord) -> dict[str, Any]:
    """The recorded inputs with what the server really serves in place of the variants,
    logging and pinned port; defaults the spec left out stay out, so only real
    differences show as drift."""
    recorded_variants = recorded.get("variants") or {}
    variants = {}
    for name, v in live.stable.items():
        variants[name] = {"model": v.model} | _like(
            recorded_variants.get(name) or {}, {"weight": v.weight, "shadow": v.shadow},
            VARIANT_DEFAULTS)
    out = {**recorded, "variants": variants}
    if recorded.get("port") is not None:
        out["port"] = record.port
    recorded_logging = recorded.get("logging") or {}
    logging = _like(recorded_logging,
                    {"sample_rate": live.sample_rate, "max_rows": live.max_rows,
                     "max_bytes": _size_as_written(recorded_logging.get("max_bytes"),
                                                   live.max_bytes)},
                    LOGGING_DEFAULTS)
    if logging or "logging" in recorded:
        out["logging"] = logging
    recorded_limits = recorded.get("limits") or {}
    limits = _like(recorded_limits, _limits_as_written(recorded_limits, live.limits),
                   LIMITS_DEFAULTS)
    if limits or "limits" in recorded:
        out["limits"] = limits
    return out


def _limits_as_written(written: dict, live: Any) -> dict:
    """The server's limits (bytes, seconds), each as the spec wrote it when it is the
    same value (`16KiB`, `10s`), so that only real differences show as drift."""
    out = {}
    for key, value in live.model_dump().items():
        given = written.get(key)
        try:
            same = given is not None and (
                seconds(given) == value if key.endswith("_timeout")
                else int(EndpointLimits.model_validate({key: given}).__dict__[key]) == value)
        except (ValidationError, ValueError):
            same = False
        out[key] = given if same else (f"{value:g}s" if key.endswith("_timeout") else value)
    return out


def _size_as_written(written: Any, live: int) -> Any:
    """`live` bytes, as the spec wrote them (`64MiB`) when that is the same size."""
    try:
        if written is not None and int(RequestLogging(max_bytes=written).max_bytes) == live:
            return written
    except ValidationError:
        pass
    return live


def _like(recorded: dict, live: dict, defaults: dict) -> dict:
    return {k: v for k, v in live.items() if k in recorded or v != defaults.get(k)}
