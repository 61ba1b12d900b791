"""What CustomJob and BatchPredictionJob share: server-generated numeric ids, get, list with a
label filter, cancel, delete (refused while the job runs), and a runner thread per job that
moves it through the service's states.

States: PENDING at create (QUEUED while `hold_jobs` is on), RUNNING once the work starts,
then SUCCEEDED, FAILED (with `error`), PARTIALLY_SUCCEEDED (batch jobs with some failed
instances) or, after cancel, CANCELLING then CANCELLED.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from .containers import Process
from .errors import ApiError, not_found
from .filters import page, parse_filter
from .frontend import ID, LOC, Router
from .state import EMPTY, Store, now

QUEUED, PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = 1, 2, 3, 4, 5, 6, 7
PARTIALLY_SUCCEEDED = 11
TERMINAL = (SUCCEEDED, FAILED, CANCELLED, PARTIALLY_SUCCEEDED)
STATES = {"JOB_STATE_QUEUED": QUEUED, "JOB_STATE_PENDING": PENDING, "JOB_STATE_RUNNING": RUNNING,
          "JOB_STATE_SUCCEEDED": SUCCEEDED, "JOB_STATE_FAILED": FAILED,
          "JOB_STATE_CANCELLING": CANCELLING, "JOB_STATE_CANCELLED": CANCELLED,
          "JOB_STATE_PARTIALLY_SUCCEEDED": PARTIALLY_SUCCEEDED}


class Cancelled(Exception):
    """Raised inside a runner when its job was cancelled."""


class Jobs:
    """A job collection; subclasses set the names and implement `validate` and `work`."""

    collection = ""  # "customJobs"
    kind = ""        # "CustomJob"
    permission = ""  # "aiplatform.customJobs"
    # Operations named under the job, as for custom jobs; the client library has no path to
    # poll operations under a batch prediction job, so those live under the location.
    operations_under_job = True

    def __init__(self, store: Store):
        self.store = store
        self.jobs: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, Process] = {}
        self.cancelled: set[str] = set()

    def register(self, r: Router) -> None:
        base, kind, perm = LOC + "/" + self.collection, self.kind, self.permission
        r.add("POST", rf"/v1/{base}", f"Create{kind}", f"{perm}.create", self.create)
        r.add("GET", rf"/v1/{base}", f"List{kind}s", f"{perm}.list", self.list)
        r.add("GET", rf"/v1/{base}/(?P<id>{ID})", f"Get{kind}", f"{perm}.get", self.get)
        r.add("POST", rf"/v1/{base}/(?P<id>{ID}):cancel", f"Cancel{kind}", f"{perm}.cancel", self.cancel)
        r.add("DELETE", rf"/v1/{base}/(?P<id>{ID})", f"Delete{kind}", f"{perm}.delete", self.delete)

    # -- to implement -----------------------------------------------------------------------

    def validate(self, body: dict[str, Any]) -> None:
        """Raise ApiError for a job the service would refuse at create."""

    def work(self, job_id: str, job: dict[str, Any]) -> None:
        """Run the job (state is RUNNING); return to succeed, raise ApiError to fail, call
        `self.start_process` for processes cancel must stop and `self.check_cancelled`
        between steps."""

    # -- handlers ---------------------------------------------------------------------------

    def _job(self, g: dict[str, str]) -> dict[str, Any]:
        job = self.jobs.get(g["id"])
        if job is None:
            raise not_found(f"projects/{g['project']}/locations/{g['location']}/{self.collection}/{g['id']}")
        return job

    def create(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", f"{self.kind}.display_name must be set.")
        self.validate(body)
        job_id = self.store.new_id()
        job = copy.deepcopy(body)
        held = not self.store.jobs_released.is_set()
        job.update(name=f"{self.store.parent}/{self.collection}/{job_id}",
                   state=QUEUED if held else PENDING, createTime=now(), updateTime=now())
        job.setdefault("labels", {})
        with self.store.lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._run, args=(job_id,), name=f"{self.kind}-{job_id}",
                         daemon=True).start()
        return 200, copy.deepcopy(job)

    def get(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            return 200, copy.deepcopy(self._job(g))

    def list(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        keep = parse_filter(q.get("filter", ""), STATES)
        with self.store.lock:
            items = [copy.deepcopy(j) for j in self.jobs.values() if keep(j)]
        return 200, page(items, q, self.collection)

    def cancel(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            job = self._job(g)
            if job["state"] in TERMINAL:
                raise ApiError("FAILED_PRECONDITION",
                               f"Cannot cancel {self.kind} {job['name']} in state {job['state']}.")
            self.cancelled.add(g["id"])
            if job["state"] in (QUEUED, PENDING):  # not started: nothing to stop
                self._finish_cancelled(g["id"])
                return 200, {}
            job.update(state=CANCELLING, updateTime=now())
            process = self.processes.get(g["id"])
        if process is not None:
            threading.Thread(target=process.stop, daemon=True).start()
        return 200, {}

    def delete(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            job = self._job(g)
            if job["state"] not in TERMINAL:
                raise ApiError("FAILED_PRECONDITION",
                               f"The {self.kind} {job['name']} cannot be deleted because it is "
                               "running; cancel it first.")
            del self.jobs[g["id"]]
            op = self.store.start_operation(
                job["name"] if self.operations_under_job else self.store.parent, "DeleteOperationMetadata")
            self.store.finish_operation(op, {"@type": EMPTY})
        return 200, op

    # -- the runner ---------------------------------------------------------------------------

    def set(self, job_id: str, **fields: Any) -> None:
        with self.store.lock:
            job = self.jobs.get(job_id)
            if job is not None:
                job.update(fields, updateTime=now())

    def start_process(self, job_id: str, start: Any) -> Process:
        """Start a process (`start()` returns it) unless the job was cancelled; cancel stops it."""
        with self.store.lock:
            self.check_cancelled(job_id)
            process: Process = start()
            self.processes[job_id] = process
            return process

    def check_cancelled(self, job_id: str) -> None:
        if job_id in self.cancelled:
            raise Cancelled()

    def _run(self, job_id: str) -> None:
        self.store.jobs_released.wait()
        with self.store.lock:
            if job_id in self.cancelled or job_id not in self.jobs:
                return
            self.set(job_id, state=RUNNING, startTime=now())
            job = copy.deepcopy(self.jobs[job_id])
        try:
            self.work(job_id, job)
        except Cancelled:
            pass
        except ApiError as e:
            if job_id not in self.cancelled:
                self.set(job_id, state=FAILED, endTime=now(), error=e.rpc_status())
                return
        with self.store.lock:
            if job_id in self.cancelled:
                self._finish_cancelled(job_id)
            elif self.jobs.get(job_id, {}).get("state") == RUNNING:
                self.set(job_id, state=SUCCEEDED, endTime=now())

    def _finish_cancelled(self, job_id: str) -> None:
        self.set(job_id, state=CANCELLED, endTime=now(), error={"code": 1, "message": "CANCELED"})

    def log(self, job_name: str) -> str:
        """The job's process output (stdout then stderr); "" when it never started one."""
        process = self.processes.get(job_name.rsplit("/", 1)[-1])
        return process.log() if process is not None else ""

    def stop(self) -> None:
        self.store.jobs_released.set()
        for process in list(self.processes.values()):
            process.stop(grace=2)
