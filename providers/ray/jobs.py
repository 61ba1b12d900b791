"""Ray Jobs as mlform runs them: the submission id that makes a submit idempotent, the
ownership metadata, the mapping of `compute`, and submit-or-adopt, wait and stop.

The submission id is the stack, the resource and the digest of the engine's idempotency
key (a digest of the inputs): Ray refuses a second job with the same id, so a create
repeated after an interrupted apply finds the job the first one submitted and adopts it
(waiting while it runs) instead of training twice. A job that failed or was stopped is
forgotten (`delete_job`) before its id is submitted again; `delete` stops a running job
and forgets it, so the same inputs can run again after a destroy.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlform.engine.provider import Progress

from .errors import RayError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
STACK_KEY, RESOURCE_KEY, TYPE_KEY, PROVIDER_KEY = (
    "mlform-stack", "mlform-resource", "mlform-type", "mlform-provider")
PREFIX = "mlform-"
NO_GPU = "no GPU in the Ray cluster: trained on CPU"


def submission_id(stack: str, resource: str, key: str) -> str:
    """`mlform-<stack>-<resource>-<digest>` for the engine's idempotency key
    `<stack>.<resource>.<digest>`; any other key is digested whole. Ray keeps the id in
    file names, so only letters, digits, `-` and `_` are kept."""
    head = f"{stack}.{resource}."
    digest = key[len(head):] if key.startswith(head) and \
        re.fullmatch(r"[0-9a-f]{8,64}", key[len(head):]) else \
        hashlib.sha256(key.encode()).hexdigest()[:16]
    return PREFIX + "-".join(_slug(p)[:40] for p in (stack, resource)) + f"-{digest}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def metadata(stack: str, resource: str, rtype: str) -> dict[str, str]:
    """What marks a job as this stack's (read back by `list_owned`)."""
    return {STACK_KEY: stack, RESOURCE_KEY: resource, TYPE_KEY: rtype, PROVIDER_KEY: "ray"}


@dataclass(frozen=True)
class Placement:
    """How a job's `compute` lands on the cluster."""

    entrypoint: dict[str, Any]
    """`entrypoint_num_cpus`, `entrypoint_num_gpus`, `entrypoint_memory` for submit_job."""
    workers: int
    """Ray Train workers (`compute.instances`); 1 trains in the entrypoint itself."""
    worker_cpus: float
    worker_gpus: float
    device_note: str
    """Why the job trains on another device than asked (no GPU in the cluster)."""


def placement(compute: Any, cluster_gpus: float | None) -> Placement:
    """`compute` (cpus, memory_gb, gpus, instances) as Ray resources. One instance runs in
    the entrypoint, which reserves them; several are Ray Train workers, each reserving
    them, and the entrypoint only coordinates (0 CPUs, or the workers would wait for the
    CPU it holds). GPUs asked of a cluster that has none are dropped, with a note, as
    the local provider trains on CPU when no GPU is present: a job would otherwise wait
    for them forever."""
    cpus = float(compute.cpus) if compute.cpus is not None else 1.0
    gpus = float(compute.gpus or 0)
    note = ""
    if gpus and cluster_gpus is not None and cluster_gpus < gpus * int(compute.instances):
        wanted = gpus * int(compute.instances)
        note = NO_GPU if not cluster_gpus else \
            f"the Ray cluster has {cluster_gpus:g} GPU(s), fewer than the {wanted:g} asked " \
            f"for ({gpus:g} per instance): trained on CPU"
        gpus = 0.0
    memory = int(float(compute.memory_gb) * 1024 ** 3) if compute.memory_gb else None
    instances = int(compute.instances)
    if instances > 1:
        entry: dict[str, Any] = {"entrypoint_num_cpus": 0}
    else:
        entry = {"entrypoint_num_cpus": cpus}
        if gpus:
            entry["entrypoint_num_gpus"] = gpus
        if memory:
            entry["entrypoint_memory"] = memory
    return Placement(entry, instances, cpus, gpus, note)


def is_missing(exc: BaseException) -> bool:
    """True when Ray said that the job does not exist."""
    return isinstance(exc, RuntimeError) and "status code 404" in str(exc)


RETRIES = (0.5, 1.0, 2.0, 4.0)
"""Pauses between attempts of a call the dashboard dropped (a busy or restarting head)."""


class RetryingClient:
    """A `JobSubmissionClient` whose calls are tried again when the connection drops: the
    dashboard closes connections when it is busy, and every call here is safe to repeat
    (a repeated submit is refused as existing, which adopts)."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            for pause in (*RETRIES, None):
                try:
                    return method(*args, **kwargs)
                except OSError:  # requests' ConnectionError and Timeout are OSErrors
                    if pause is None:
                        raise
                    time.sleep(pause)
            raise AssertionError("unreachable")

        return call


class JobRunner:
    """Submit-or-adopt, wait and stop, over one `JobSubmissionClient`."""

    def __init__(self, client: Any, poll_interval: float):
        self.client = RetryingClient(client)
        self.poll = poll_interval

    def info(self, sid: str) -> Any | None:
        """The job's `JobDetails`, or None when Ray has no job of that id."""
        try:
            return self.client.get_job_info(sid)
        except RuntimeError as exc:
            if is_missing(exc):
                return None
            raise

    def submit_or_adopt(self, sid: str, progress: Progress, **submit: Any) -> bool:
        """Submit the job under `sid`, or adopt the one already there; True if adopted.
        A finished job that did not succeed is forgotten and submitted again."""
        found = self.info(sid)
        if found is not None and status_of(found) in ("FAILED", "STOPPED"):
            progress(f"Ray job {sid} {status_of(found).lower()} before: running it again")
            self.client.delete_job(sid)
            found = None
        if found is not None:
            progress(f"Ray job {sid} exists ({status_of(found)}): adopting it")
            return True
        try:
            self.client.submit_job(submission_id=sid, **submit)
        except RuntimeError as exc:
            if "already exists" not in str(exc):
                raise
            progress(f"Ray job {sid} was submitted meanwhile: adopting it")
            return True
        progress(f"submitted Ray job {sid}")
        return False

    def wait(self, sid: str, timeout: float, progress: Progress,
             report: Callable[[str], tuple[str, float | None] | None]) -> Any:
        """Poll until the job ends, relaying what `report` reads in its logs; stop it when
        `timeout` seconds pass. Returns its last `JobDetails`."""
        started = time.monotonic()
        last: tuple[str, float | None] | None = None
        while True:
            info = self.info(sid)
            if info is None:
                raise RayError(f"Ray job {sid} disappeared while mlform waited for it "
                               "(deleted outside mlform?)")
            status = status_of(info)
            if status in TERMINAL:
                return info
            if status == "PENDING":
                seen: tuple[str, float | None] | None = (
                    f"Ray job {sid} is pending: waiting for the cluster's resources", None)
            else:
                seen = report(self.logs(sid))
            if seen and seen != last:
                last = seen
                progress(*seen)
            if time.monotonic() - started > timeout:
                self.client.stop_job(sid)
                raise RayError(f"Ray job {sid} ran past its timeout ({timeout:g}s) and "
                               "was stopped")
            time.sleep(self.poll)

    def logs(self, sid: str) -> str:
        try:
            return str(self.client.get_job_logs(sid))
        except RuntimeError:
            return ""

    def stop_and_forget(self, sid: str, progress: Progress, timeout: float = 60.0) -> None:
        """Stop the job if it runs, wait until it ended, and delete Ray's record of it."""
        info = self.info(sid)
        if info is None:
            return
        if status_of(info) not in TERMINAL:
            progress(f"stopping Ray job {sid}")
            self.client.stop_job(sid)
            deadline = time.monotonic() + timeout
            while (info := self.info(sid)) is not None and status_of(info) not in TERMINAL:
                if time.monotonic() > deadline:
                    raise RayError(f"Ray job {sid} did not stop within {timeout:g}s")
                time.sleep(min(self.poll, 0.5))
        if info is not None:
            self.client.delete_job(sid)


def status_of(info: Any) -> str:
    status = info.status
    return str(getattr(status, "value", status))


def failure_reason(info: Any, logs: str, lines: int = 15) -> str:
    """Ray's message for a job that did not succeed, with the end of its logs."""
    message = (info.message or "no reason given").strip()
    tail = [line for line in logs.splitlines() if line.strip()][-lines:]
    if tail:
        message += "\n  last lines of the job's log:\n" + "\n".join(f"    {t}" for t in tail)
    return message
