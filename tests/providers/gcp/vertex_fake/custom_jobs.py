"""CustomJob: the job is RUN as a local process, the first worker pool's container command
(see containers.py), with the environment Vertex sets for custom training. Exit 0 succeeds;
any other exit fails the job with an `error.message` that gives the exit status and quotes the
tail of its stderr (the real service says only the status and points to Cloud Logging)."""

from __future__ import annotations

from typing import Any

from .containers import Process, argv_of, env_of
from .errors import ApiError
from .jobs import Jobs
from .state import Store


def job_env(store: Store, job: dict[str, Any]) -> dict[str, str]:
    """What Vertex sets in a custom job's containers."""
    env = {"CLOUD_ML_PROJECT_ID": store.project}
    base = (job.get("jobSpec", {}).get("baseOutputDirectory") or {}).get("outputUriPrefix")
    if base:
        base = base.rstrip("/")
        env.update(AIP_MODEL_DIR=f"{base}/model/", AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                   AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/")
    return env


class CustomJobs(Jobs):
    collection, kind, permission = "customJobs", "CustomJob", "aiplatform.customJobs"

    def validate(self, body: dict[str, Any]) -> None:
        pools = body.get("jobSpec", {}).get("workerPoolSpecs") or []
        if not pools or not pools[0].get("containerSpec") and not pools[0].get("pythonPackageSpec"):
            raise ApiError("INVALID_ARGUMENT",
                           "CustomJob.job_spec.worker_pool_specs[0] needs a container_spec or "
                           "a python_package_spec.")

    def work(self, job_id: str, job: dict[str, Any]) -> None:
        spec = job["jobSpec"]["workerPoolSpecs"][0].get("containerSpec") or {}
        argv = argv_of(spec, "worker pool 0")
        directory = self.store.work_dir / self.collection / job_id
        env = env_of(spec, self.store.storage_url, directory, job_env(self.store, job))
        process = self.start_process(job_id, lambda: Process.start(argv, env, directory))
        code = process.popen.wait()
        self.check_cancelled(job_id)
        if code != 0:
            raise ApiError("INVALID_ARGUMENT",
                           f"The replica workerpool0-0 exited with a non-zero status of {code}. "
                           f"Last lines of its stderr:\n{process.stderr_tail()}")
