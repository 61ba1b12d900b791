"""Command jobs: `PUT jobs/{name}` with the caller's name, GET, list, cancel; the job RUNS
here as a local process, the documented stand-in for a compute cluster running the
environment's image.

A run: wait while `hold_jobs` holds (Queued); download the code asset and the uri_file /
uri_folder / model inputs from Azurite into the job's directory; substitute `${{inputs.x}}` and
`${{outputs.y}}` in the command with local paths; run it with bash in the code folder, `python`
being this interpreter; upload each output folder to its blob URI (default
`azureml://datastores/workspaceblobstore/paths/azureml/{job}/{output}/`); Completed, or Failed
with the stderr tail as the run's error, or Canceled.

A PUT for an existing name answers as the service does: the same job with description, tags,
displayName, properties (new keys only) and isArchived updated, or 400 UserError when anything
else (command, inputs, outputs, code, environment, compute...) differs.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assets import Assets
from .blob import Storage
from .errors import AzureError, bad_request, not_found
from .frontend import WS, Request, Response, Router
from .state import PROVIDER, Store, now, system_data

TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding"}
MUTABLE = {"description", "tags", "displayName", "properties", "isArchived"}
# Fields the service fills in or that the SDK sends differently on a round trip.
SERVER_FIELDS = {"status", "services", "parameters", "creationContext", "experimentName",
                 "isArchived", "componentId", "notificationSetting", "identity", "secretsConfiguration"}
_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")


@dataclass
class Run:
    resource: dict[str, Any]
    directory: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None
    error: dict[str, str] | None = None
    start: str | None = None
    end: str | None = None


class Jobs:
    def __init__(self, store: Store, assets: Assets, storage: Storage):
        self.store = store
        self.assets = assets
        self.storage = storage
        self.runs: dict[str, Run] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def register(self, router: Router) -> None:
        act = f"{PROVIDER}/workspaces/jobs"
        one = WS + r"/jobs/(?P<name>[^/]+)"
        router.add("GET", WS + r"/jobs", "ListJobs", f"{act}/read", self._list)
        router.add("GET", one, "GetJob", f"{act}/read", self._get)
        router.add("PUT", one, "CreateOrUpdateJob", f"{act}/write", self._put)
        router.add("POST", one + r"/cancel", "CancelJob", f"{act}/cancel/action", self._cancel)
        router.add("DELETE", one, "DeleteJob", f"{act}/delete", self._delete)
        router.add("GET", r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices"
                          r"/locations/[^/]+/mfeOperationResults/(?P<op>[^/]+)",
                   "GetOperationResult", f"{PROVIDER}/locations/operationresults/read",
                   self._operation_result)

    # -- reading ------------------------------------------------------------------------------

    def _run(self, name: str) -> Run:
        run = self.runs.get(name)
        if run is None:
            raise not_found("Job", name)
        return run

    def get(self, name: str) -> dict[str, Any]:
        with self.store.lock:
            return copy.deepcopy(self._run(name).resource)

    def _get(self, request: Request) -> Response:
        return Response(200, self.get(request.groups["name"]))

    def _list(self, request: Request) -> Response:
        q = request.query
        with self.store.lock:
            jobs = [copy.deepcopy(r.resource) for r in self.runs.values()]
        view = q.get("listViewType", "ActiveOnly")
        if view == "ActiveOnly":
            jobs = [j for j in jobs if not j["properties"].get("isArchived")]
        elif view == "ArchivedOnly":
            jobs = [j for j in jobs if j["properties"].get("isArchived")]
        if q.get("jobType"):
            jobs = [j for j in jobs if j["properties"]["jobType"].lower() == q["jobType"].lower()]
        if q.get("tag"):
            # the service: "jobs returned will have this tag key"
            jobs = [j for j in jobs if q["tag"] in (j["properties"].get("tags") or {})]
        if q.get("properties"):
            for pair in q["properties"].split(","):
                key, _, value = pair.partition("=")
                jobs = [j for j in jobs if key in (j["properties"].get("properties") or {})
                        and (not value or j["properties"]["properties"][key] == value)]
        jobs.sort(key=lambda j: j["systemData"]["createdAt"], reverse=True)
        return Response(200, {"value": jobs})

    # -- creating -----------------------------------------------------------------------------

    def _put(self, request: Request) -> Response:
        body = request.json()
        props = body.get("properties")
        name = request.groups["name"]
        if not isinstance(props, dict):
            raise bad_request("The request body must carry 'properties'.")
        if str(props.get("jobType", "")).lower() != "command":
            raise bad_request(f"The fake runs command jobs only, not {props.get('jobType')!r}.")
        with self.store.lock:
            run = self.runs.get(name)
            if run is not None:
                self._update(run, props)
                return Response(200, copy.deepcopy(run.resource))
            resource = self._new_resource(name, props)
            run = Run(resource=resource, directory=self.store.work_dir / "jobs" / name)
            self.runs[name] = run
        thread = threading.Thread(target=self._execute, args=(name,), name=f"aml-job-{name}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return Response(201, copy.deepcopy(resource))

    def _new_resource(self, name: str, props: dict[str, Any]) -> dict[str, Any]:
        if not props.get("command"):
            raise bad_request("Command job must have a command.")
        if not props.get("environmentId"):
            raise bad_request("Command job must have an environmentId.")
        self.assets.resolve(props["environmentId"], "environments")  # 404 if absent
        if props.get("codeId"):
            self._code_uri(props["codeId"])
        props = copy.deepcopy(props)
        outputs = props.get("outputs") or {}
        for output_name, output in outputs.items():
            if output is not None and not output.get("uri"):
                output["uri"] = (f"azureml://datastores/workspaceblobstore/paths/azureml/{name}/"
                                 f"{output_name}/")
        props.update({"status": "Queued", "experimentName": props.get("experimentName") or "Default",
                      "displayName": props.get("displayName") or name,
                      "tags": props.get("tags") or {}, "properties": props.get("properties") or {},
                      "isArchived": False,
                      "services": {"Studio": {"jobServiceType": "Studio",
                                              "endpoint": f"{self.store.url}/studio/jobs/{name}"}}})
        return {"id": f"{self.store.workspace_id}/jobs/{name}", "name": name,
                "type": f"{PROVIDER}/workspaces/jobs", "systemData": system_data(),
                "properties": props}

    def _update(self, run: Run, props: dict[str, Any]) -> None:
        current = run.resource["properties"]
        changed = sorted(k for k in set(props) | set(current)
                         if k not in MUTABLE | SERVER_FIELDS
                         and _normal(props.get(k)) != _normal(current.get(k))
                         and not (k == "outputs" and _same_outputs(props.get(k), current.get(k))))
        for key, value in (props.get("properties") or {}).items():
            if key in current["properties"] and current["properties"][key] != value:
                changed.append(f"properties.{key}")
        if changed:
            raise AzureError(
                400, "UserError",
                "A job with this name already exists. If you are trying to create a new job, use "
                "a different name. If you are trying to update an existing job, the existing "
                f"job's {', '.join(changed)} cannot be changed. Only description, tags, "
                "displayName, properties, and isArchived can be updated.")
        for key in ("description", "displayName", "isArchived"):
            if props.get(key) is not None:
                current[key] = props[key]
        if props.get("tags") is not None:
            current["tags"] = dict(props["tags"])
        current["properties"].update(props.get("properties") or {})
        run.resource["systemData"] = system_data(run.resource["systemData"])

    def _code_uri(self, code_id: str) -> str:
        if code_id.startswith(("azureml://datastores", "https://", "http://", "wasbs://")):
            return code_id
        return str(self.assets.resolve(code_id, "codes")["properties"]["codeUri"])

    # -- cancelling ---------------------------------------------------------------------------

    def _cancel(self, request: Request) -> Response:
        name = request.groups["name"]
        with self.store.lock:
            run = self._run(name)
            status = run.resource["properties"]["status"]
            if status not in TERMINAL:
                run.cancel.set()
                run.resource["properties"]["status"] = "CancelRequested"
                if run.process is not None and run.process.poll() is None:
                    _kill(run.process)
        url, record = self.store.start_operation()
        self.store.finish_operation(record)
        return Response(202, None, {"Location": url.replace("mfeOperationsStatus", "mfeOperationResults"),
                                    "retry-after-ms": "200"})

    def _operation_result(self, request: Request) -> Response:
        record = self.store.get_operation(request.groups["op"])
        return Response(202 if record["status"] == "InProgress" else 200, None,
                        {"retry-after-ms": "200"} if record["status"] == "InProgress" else {})

    def _delete(self, request: Request) -> Response:
        name = request.groups["name"]
        with self.store.lock:
            run = self.runs.get(name)
            if run is None:
                return Response(204)
            if run.resource["properties"]["status"] not in TERMINAL:
                raise AzureError(409, "UserError", f"Job {name} is still running; cancel it first.")
            del self.runs[name]
        return Response(200)

    # -- running ------------------------------------------------------------------------------

    def _set_status(self, run: Run, status: str) -> None:
        with self.store.lock:
            if run.resource["properties"]["status"] in TERMINAL:
                return
            run.resource["properties"]["status"] = status
            if status == "Running":
                run.start = now()
            if status in TERMINAL:
                run.end = now()

    def _execute(self, name: str) -> None:
        run = self.runs[name]
        while not self.store.jobs_released.wait(0.1):
            if run.cancel.is_set() or self._stopping.is_set():
                self._set_status(run, "Canceled")
                return
        if run.cancel.is_set():
            self._set_status(run, "Canceled")
            return
        props = run.resource["properties"]
        directory = run.directory
        try:
            self._set_status(run, "Preparing")
            command, code_dir, outputs = self._prepare(run, props, directory)
        except Exception as e:  # a bad input or code asset fails the job, as on the service
            message = e.message if isinstance(e, AzureError) else str(e)
            run.error = {"code": "UserError", "message": f"Failed to prepare the job: {message}"}
            self._set_status(run, "Failed")
            return
        if run.cancel.is_set():
            self._set_status(run, "Canceled")
            return
        env = {**os.environ, **(props.get("environmentVariables") or {}),
               "AZUREML_RUN_ID": name, "MLFLOW_RUN_ID": name,
               "AZUREML_ARM_SUBSCRIPTION": self.store.subscription,
               "AZUREML_ARM_RESOURCEGROUP": self.store.resource_group,
               "AZUREML_ARM_WORKSPACE_NAME": self.store.workspace,
               "PATH": f"{_python_bin(directory)}{os.pathsep}{os.environ.get('PATH', '')}"}
        stdout = (directory / "stdout.log").open("wb")
        stderr = (directory / "stderr.log").open("wb")
        with self.store.lock:
            if run.cancel.is_set():
                self._set_status(run, "Canceled")
                return
            run.process = subprocess.Popen(["bash", "-c", command], cwd=code_dir, env=env,
                                           stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            self._set_status(run, "Running")
        code = run.process.wait()
        stdout.close()
        stderr.close()
        if run.cancel.is_set():
            self._set_status(run, "Canceled")
            return
        if code != 0:
            tail = (directory / "stderr.log").read_text(errors="replace")[-2000:]
            run.error = {"code": "UserError",
                         "message": f"Execution failed. User process 'bash' exited with status "
                                    f"code {code}. Please check log file 'user_logs/std_log.txt' "
                                    f"for error details. Error: {tail}"}
            self._set_status(run, "Failed")
            return
        self._set_status(run, "Finalizing")
        try:
            for uri, path in outputs:
                if any(path.iterdir()):
                    self.storage.upload(path, uri)
        except Exception as e:
            run.error = {"code": "SystemError", "message": f"Failed to upload outputs: {e}"}
            self._set_status(run, "Failed")
            return
        self._set_status(run, "Completed")

    def _prepare(self, run: Run, props: dict[str, Any],
                 directory: Path) -> tuple[str, Path, list[tuple[str, Path]]]:
        directory.mkdir(parents=True, exist_ok=True)
        code_dir = directory / "code"
        code_dir.mkdir(exist_ok=True)
        if props.get("codeId"):
            self.storage.download(self._code_uri(props["codeId"]), code_dir)
        values: dict[tuple[str, str], str] = {}
        for input_name, spec in (props.get("inputs") or {}).items():
            if spec is None:
                continue
            kind = str(spec.get("jobInputType", "")).lower()
            if kind == "literal":
                values[("inputs", input_name)] = str(spec.get("value"))
                continue
            uri = spec.get("uri") or ""
            if (uri.startswith("azureml:") and not uri.startswith("azureml://")) \
                    or uri.startswith("/subscriptions/"):
                # a data asset (`azureml:name:version` or its ARM id): its dataUri
                uri = self.assets.resolve(uri, "data")["properties"]["dataUri"]
            local = self.storage.download(uri, directory / "inputs" / input_name)
            values[("inputs", input_name)] = str(local)
        outputs: list[tuple[str, Path]] = []
        for output_name, spec in (props.get("outputs") or {}).items():
            if spec is None:
                continue
            local = directory / "outputs" / output_name
            local.mkdir(parents=True, exist_ok=True)
            values[("outputs", output_name)] = str(local)
            outputs.append((spec["uri"], local))

        def substitute(match: re.Match[str]) -> str:
            key = (match.group(1), match.group(2))
            if key not in values:
                raise bad_request(f"The command refers to {match.group(0)}, which the job does "
                                  "not define.")
            return shlex.quote(values[key])

        return _PLACEHOLDER.sub(substitute, props["command"]), code_dir, outputs

    # -- run history's view (error, times) and logs -------------------------------------------

    def run_record(self, name: str) -> dict[str, Any]:
        """The job as run history keeps it (status, times, error, tags)."""
        with self.store.lock:
            run = self._run(name)
            props = run.resource["properties"]
            record: dict[str, Any] = {
                "runId": name, "runUuid": name, "displayName": props.get("displayName"),
                "status": props["status"], "experimentId": props.get("experimentName"),
                "startTimeUtc": run.start, "endTimeUtc": run.end,
                "tags": dict(props.get("tags") or {}),
                "properties": dict(props.get("properties") or {}),
                "description": props.get("description"), "runType": "azureml.scriptrun"}
            if run.error:
                record["error"] = {"error": dict(run.error)}
            return record

    def log(self, name: str) -> str:
        """What a job's process wrote (stdout, then stderr)."""
        directory = self._run(name).directory
        return "".join((directory / f).read_text(errors="replace")
                       for f in ("stdout.log", "stderr.log") if (directory / f).exists())

    def stop(self) -> None:
        self._stopping.set()
        with self.store.lock:
            for run in self.runs.values():
                run.cancel.set()
                if run.process is not None and run.process.poll() is None:
                    _kill(run.process)
        for thread in self._threads:
            thread.join(timeout=5)


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _python_bin(directory: Path) -> Path:
    """A folder whose `python` (and `python3`) is this interpreter: the job's environment."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        # a wrapper, not a symlink: a symlinked venv interpreter loses the venv's packages
        wrapper = bin_dir / name
        if not wrapper.exists():
            wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
            wrapper.chmod(0o755)
    return bin_dir


def _normal(value: Any) -> Any:
    """A comparable form: None, {} and [] are the same absence; dict keys sorted."""
    if value in (None, {}, [], ""):
        return None
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in sorted(value.items()) if _normal(v) is not None}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _same_outputs(new: Any, current: Any) -> bool:
    """Outputs match when they differ only by the default URI the service filled in."""
    new, current = copy.deepcopy(new or {}), copy.deepcopy(current or {})
    for name, spec in current.items():
        if spec and name in new and new[name] and not new[name].get("uri"):
            spec.pop("uri", None)
    return bool(_normal(new) == _normal(current))
