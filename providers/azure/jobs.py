"""Command jobs: read by name, started, cancelled and released, shared by training jobs,
gate evaluations and batch scoring.

A job is read with a plain GET of its ARM path (status, tags, archive flag and error, as
the service reports them); it is started through `MLClient.jobs`. Azure ML never deletes a
job and never reuses a name: a job mlform no longer wants is cancelled if it runs and
archived, and a new run of the same inputs takes the next name (`-r2`, `-r3`).
"""

from __future__ import annotations

from typing import Any

from mlform.engine.provider import Progress

from .clients import Clients
from .errors import is_not_found
from .waiting import SETTLED, failure_reason, status_of, wait_for_job

API_VERSION = "2024-04-01"


class Jobs:
    def __init__(self, clients: Clients, resource: str):
        self.clients = clients
        self.resource = resource

    def path(self, name: str) -> str:
        return f"{self.clients.cfg.workspace_id}/jobs/{name}"

    def read(self, name: str) -> dict[str, Any] | None:
        """The job's REST body, or None when there is none by that name."""
        try:
            return self.clients.arm_get(self.path(name), {"api-version": API_VERSION},
                                        area="jobs", resource=self.resource)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    @staticmethod
    def archived(job: dict[str, Any]) -> bool:
        return bool((job.get("properties") or {}).get("isArchived"))

    @staticmethod
    def tags(job: dict[str, Any]) -> dict[str, str]:
        return dict((job.get("properties") or {}).get("tags") or {})

    def failure(self, name: str, job: dict[str, Any]) -> str:
        """Why the job failed: the job's own error, else its run's in run history (where
        Azure ML keeps a command's exit status and stderr tail)."""
        reason = failure_reason(job)
        if reason != "no reason given":
            return reason
        try:
            details = self.clients.ml.jobs._runs_operations.get_run_details(name)
        except Exception:  # the reason is a courtesy: the failure is reported anyway
            return reason
        error = getattr(details, "error", None)
        message = getattr(getattr(error, "error", error), "message", None)
        return " ".join(str(message).split())[-600:] if message else reason

    def start(self, job: Any) -> None:
        self.clients.call("jobs", lambda: self.clients.ml.jobs.create_or_update(job),
                          resource=self.resource)

    def wait(self, name: str, what: str, timeout: float, progress: Progress,
             resource_type: str) -> dict[str, Any]:
        def describe() -> dict[str, Any]:
            found = self.read(name)
            if found is None:
                raise ValueError(f"{what} is gone")
            return found

        return wait_for_job(describe, what=what, timeout=timeout,
                            interval=self.clients.cfg.poll_interval, progress=progress,
                            resource_type=resource_type)

    def release(self, name: str, progress: Progress, timeout: float, rtype: str) -> None:
        """Cancel the job if it runs, then archive it (Azure ML keeps jobs): gone from the
        workspace's lists and never adopted again."""
        job = self.read(name)
        if job is None:
            return
        if status_of(job) not in SETTLED:
            progress(f"cancelling job {name}")
            try:
                self.clients.wait("jobs", lambda: self.clients.ml.jobs.begin_cancel(name),
                                  timeout, what=f"cancelling job {name}",
                                  resource=self.resource)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        if not self.archived(job):
            # the ARM PUT of the job with isArchived (what `az ml job archive` did before
            # the SDK moved to run history's `hidden` flag, which is the same field)
            progress(f"archiving job {name}")
            job = self.read(name) or job
            job.setdefault("properties", {})["isArchived"] = True
            self.clients.arm("PUT", self.path(name), {"api-version": API_VERSION},
                             {"properties": job["properties"]}, area="jobs",
                             resource=self.resource)
