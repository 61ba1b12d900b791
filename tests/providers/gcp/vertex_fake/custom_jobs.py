"""CustomJob: create (server-generated numeric id), get, list (label filter), cancel, delete;
the job is RUN as a local process (the first worker pool's container command).

States: PENDING at create (QUEUED while `hold_jobs` is on), RUNNING once the process starts,
then SUCCEEDED (exit 0), FAILED (`error.message` says the exit status and quotes the stderr
tail) or, after cancel, CANCELLING then CANCELLED.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from .containers import Process, argv_of, env_of
from .errors import ApiError, not_found
from .filters import page, parse_filter
from .frontend import ID, LOC, Router
from .state import EMPTY, Store, now

QUEUED, PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = 1, 2, 3, 4, 5, 6, 7
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
STATES = {"JOB_STATE_QUEUED": QUEUED, "JOB_STATE_PENDING": PENDING, "JOB_STATE_RUNNING": RUNNING,
          "JOB_STATE_SUCCEEDED": SUCCEEDED, "JOB_STATE_FAILED": FAILED,
          "JOB_STATE_CANCELLING": CANCELLING, "JOB_STATE_CANCELLED": CANCELLED}


def job_env(store: Store, job: dict[str, Any]) -> dict[str, str]:
    """What Vertex sets in a custom job's containers."""
    env = {"CLOUD_ML_PROJECT_ID": store.project}
    base = (job.get("jobSpec", {}).get("baseOutputDirectory") or {}).get("outputUriPrefix")
    if base:
        base = base.rstrip("/")
        env.update(AIP_MODEL_DIR=f"{base}/model/", AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                   AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/")
    return env


class CustomJobs:
    """The CustomJob resource and its runner threads."""

    def __init__(self, store: Store):
        self.store = store
        self.jobs: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, Process] = {}
        self.cancelled: set[str] = set()

    def register(self, r: Router) -> None:
        base = LOC + "/customJobs"
        r.add("POST", rf"/v1/{base}", "CreateCustomJob", "aiplatform.customJobs.create", self.create)
        r.add("GET", rf"/v1/{base}", "ListCustomJobs", "aiplatform.customJobs.list", self.list)
        r.add("GET", rf"/v1/{base}/(?P<id>{ID})", "GetCustomJob", "aiplatform.customJobs.get", self.get)
        r.add("POST", rf"/v1/{base}/(?P<id>{ID}):cancel", "CancelCustomJob",
              "aiplatform.customJobs.cancel", self.cancel)
        r.add("DELETE", rf"/v1/{base}/(?P<id>{ID})", "DeleteCustomJob",
              "aiplatform.customJobs.delete", self.delete)

    def _job(self, g: dict[str, str]) -> dict[str, Any]:
        job = self.jobs.get(g["id"])
        if job is None:
            raise not_found(f"projects/{g['project']}/locations/{g['location']}/customJobs/{g['id']}")
        return job

    def create(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", "CustomJob.display_name must be set.")
        pools = body.get("jobSpec", {}).get("workerPoolSpecs") or []
        if not pools or not pools[0].get("containerSpec") and not pools[0].get("pythonPackageSpec"):
            raise ApiError("INVALID_ARGUMENT",
                           "CustomJob.job_spec.worker_pool_specs[0] needs a container_spec or "
                           "a python_package_spec.")
        job_id = self.store.new_id()
        job = copy.deepcopy(body)
        held = not self.store.jobs_released.is_set()
        job.update(name=f"{self.store.parent}/customJobs/{job_id}", state=QUEUED if held else PENDING,
                   createTime=now(), updateTime=now())
        with self.store.lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._run, args=(job_id,), name=f"customJob-{job_id}",
                         daemon=True).start()
        return 200, copy.deepcopy(job)

    def get(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            return 200, copy.deepcopy(self._job(g))

    def list(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        keep = parse_filter(q.get("filter", ""), STATES)
        with self.store.lock:
            items = [copy.deepcopy(j) for j in self.jobs.values() if keep(j)]
        return 200, page(items, q, "customJobs")

    def cancel(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            job = self._job(g)
            if job["state"] in TERMINAL:
                raise ApiError("FAILED_PRECONDITION",
                               f"Cannot cancel CustomJob {job['name']} in state {job['state']}.")
            self.cancelled.add(g["id"])
            process = self.processes.get(g["id"])
            if process is None:  # not started yet: nothing to stop
                self._finish_cancelled(g["id"])
            else:
                job.update(state=CANCELLING, updateTime=now())
        if process is not None:
            threading.Thread(target=process.stop, daemon=True).start()
        return 200, {}

    def delete(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            job = self._job(g)
            if job["state"] not in TERMINAL:
                raise ApiError("FAILED_PRECONDITION",
                               f"The CustomJob {job['name']} cannot be deleted because it is "
                               "running; cancel it first.")
            del self.jobs[g["id"]]
            op = self.store.start_operation(job["name"], "DeleteOperationMetadata")
            self.store.finish_operation(op, {"@type": EMPTY})
        return 200, op

    # -- the runner ---------------------------------------------------------------------------

    def _set(self, job_id: str, **fields: Any) -> None:
        with self.store.lock:
            job = self.jobs.get(job_id)
            if job is not None:
                job.update(fields, updateTime=now())

    def _run(self, job_id: str) -> None:
        self.store.jobs_released.wait()
        with self.store.lock:
            job = copy.deepcopy(self.jobs.get(job_id))
            if job is None or job_id in self.cancelled:
                return
        spec = job["jobSpec"]["workerPoolSpecs"][0]
        try:
            argv = argv_of(spec.get("containerSpec") or {}, "worker pool 0")
        except ApiError as e:
            self._set(job_id, state=FAILED, startTime=now(), endTime=now(), error=e.rpc_status())
            return
        directory = self.store.work_dir / "customJobs" / job_id
        env = env_of(spec["containerSpec"], self.store.storage_url, directory,
                     job_env(self.store, job))
        with self.store.lock:
            if job_id in self.cancelled:
                self._finish_cancelled(job_id)
                return
            process = Process.start(argv, env, directory)
            self.processes[job_id] = process
            self._set(job_id, state=RUNNING, startTime=now())
        code = process.popen.wait()
        with self.store.lock:
            if job_id in self.cancelled:
                self._finish_cancelled(job_id)
            elif code == 0:
                self._set(job_id, state=SUCCEEDED, endTime=now())
            else:
                message = (f"The replica workerpool0-0 exited with a non-zero status of {code}. "
                           f"Last lines of its stderr:\n{process.stderr_tail()}")
                self._set(job_id, state=FAILED, endTime=now(), error={"code": 3, "message": message})

    def _finish_cancelled(self, job_id: str) -> None:
        self._set(job_id, state=CANCELLED, endTime=now(), error={"code": 1, "message": "CANCELED"})

    def log(self, job_name: str) -> str:
        """The job's process output (stdout then stderr); "" when it never started."""
        process = self.processes.get(job_name.rsplit("/", 1)[-1])
        return process.log() if process is not None else ""

    def stop(self) -> None:
        self.store.jobs_released.set()
        for process in list(self.processes.values()):
            process.stop(grace=2)
