"""`VertexFake`: the assembled fake (state, HTTP front, resources) and its test controls."""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any, TypeVar

from .batch_jobs import BatchPredictionJobs
from .custom_jobs import CustomJobs
from .endpoints import Endpoints
from .errors import BY_HTTP, ApiError, permission_denied, quota_exceeded
from .frontend import Router, Server
from .models import Models
from .monitoring import Monitoring
from .prediction import Prediction, Stats
from .state import Store

# The quota a 429 names, per method (what the real service reports for these calls).
QUOTAS = {
    "CreateCustomJob": "aiplatform.googleapis.com/custom_model_training_cpus",
    "CreateBatchPredictionJob": "aiplatform.googleapis.com/custom_model_serving_cpus",
    "DeployModel": "aiplatform.googleapis.com/custom_model_serving_cpus",
    "Predict": "aiplatform.googleapis.com/online_prediction_requests_per_base_model",
    "RawPredict": "aiplatform.googleapis.com/online_prediction_requests_per_base_model",
}
DEFAULT_QUOTA = "aiplatform.googleapis.com/resource_management_requests_per_minute_per_region"
T = TypeVar("T")
OPERATION = (r"/(?:v1|ui)/(?P<name>projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
             r"(?:/[A-Za-z]+/[^/:]+)?/operations/[^/:]+)")


class VertexFake:
    """A running fake of the Vertex AI REST API (v1) on `url`. Test controls: `job_log`,
    `fail_next`, `hold_jobs`, `inject_errors`."""

    def __init__(self, storage_url: str, work_dir: Path, project: str, region: str,
                 project_number: str, deploy_timeout: float):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(project=project, project_number=project_number, region=region,
                           storage_url=storage_url, work_dir=work_dir)
        self.store.jobs_released.set()
        self._failures: dict[str, collections.deque[tuple[int, str | None]]] = {}
        self._failures_lock = threading.Lock()
        router = Router(self.store.check_location, self._take_failure)
        router.add("GET", OPERATION, "GetOperation", "aiplatform.operations.get",
                   lambda g, q, b: (200, self.store.get_operation(g["name"])))
        self.custom_jobs = CustomJobs(self.store)
        self.custom_jobs.register(router)
        self.models = Models(self.store)
        self.models.register(router)
        self.endpoints = Endpoints(self.store, self.models, deploy_timeout)
        self.endpoints.register(router)
        self.batch_jobs = BatchPredictionJobs(self.store, self.models, deploy_timeout)
        self.batch_jobs.register(router)
        self.stats = Stats()
        Prediction(self.store, self.endpoints, self.stats).register(router)
        Monitoring(self.store, self.stats).register(router)
        self._server = Server(router)
        self.url = self._server.url

    @property
    def project(self) -> str:
        return self.store.project

    @property
    def project_number(self) -> str:
        return self.store.project_number

    @property
    def region(self) -> str:
        return self.store.region

    def client(self, cls: type[T]) -> T:
        """A GAPIC client (e.g. `JobServiceClient`) bound to the fake the way a provider binds
        one: REST transport, `api_endpoint` = `url`, anonymous credentials."""
        from google.auth.credentials import AnonymousCredentials

        return cls(client_options={"api_endpoint": self.url},  # type: ignore[call-arg]
                   transport="rest", credentials=AnonymousCredentials())

    def stop(self) -> None:
        """Stop serving and stop every process the fake started."""
        self._server.stop()
        self.custom_jobs.stop()
        self.batch_jobs.stop()
        self.endpoints.stop()

    # -- test controls ------------------------------------------------------------------------

    def job_log(self, job_name: str) -> str:
        """What a custom or batch prediction job's process wrote (stdout, then stderr)."""
        jobs = self.batch_jobs if "/batchPredictionJobs/" in job_name else self.custom_jobs
        return jobs.log(job_name)

    def inject_errors(self, endpoint_id: str, deployed_model_id: str, rate: float) -> None:
        """Answer 500 for `rate` (0..1) of the predictions routed to that deployed model,
        counted in the statistics as any 5xx is; 0 turns it off."""
        self.stats.error_rates[(endpoint_id, deployed_model_id)] = rate

    def prediction_stats(self, endpoint_id: str, deployed_model_id: str) -> dict[str, Any]:
        """`requests`, `responses` (code -> count) and `latencies_ms` of the predictions routed
        to a deployed model so far."""
        events = self.stats.of(endpoint_id, deployed_model_id)
        return {"requests": len(events), "responses": dict(collections.Counter(e.code for e in events)),
                "latencies_ms": [e.latency_ms for e in events]}

    def serving_log(self, deployed_model_id: str) -> str:
        """What a deployed model's serving container wrote (stdout, then stderr)."""
        return "".join(p.read_text(errors="replace") for name in ("stdout.log", "stderr.log")
                       for p in sorted(self.store.work_dir.glob(f"endpoints/*/{deployed_model_id}/{name}")))

    def fail_next(self, method: str, code: int, message: str | None = None) -> None:
        """Fail the next call of RPC `method` (e.g. "CreateCustomJob", "Predict") with HTTP
        `code`: 403 names the permission and resource, 429 the quota, as the service does."""
        with self._failures_lock:
            self._failures.setdefault(method, collections.deque()).append((code, message))

    def hold_jobs(self, hold: bool) -> None:
        """While on, new jobs stay QUEUED; turning it off lets them run."""
        if hold:
            self.store.jobs_released.clear()
        else:
            self.store.jobs_released.set()

    def _take_failure(self, method: str, permission: str, resource: str) -> ApiError | None:
        with self._failures_lock:
            queue = self._failures.get(method)
            if not queue:
                return None
            code, message = queue.popleft()
        if code == 403 and message is None:
            return permission_denied(permission, resource)
        if code == 429 and message is None:
            return quota_exceeded(QUOTAS.get(method, DEFAULT_QUOTA))
        status = BY_HTTP.get(str(code), "INTERNAL")
        return ApiError(status, message or f"injected failure ({code}) for {method}")


def start_vertex_fake(storage_url: str, work_dir: Path, project: str = "test",
                      region: str = "us-central1", *, project_number: str = "123456789012",
                      deploy_timeout: float = 60.0) -> VertexFake:
    """Start the fake on a free loopback port. Jobs and containers it runs reach GCS at
    `storage_url` and keep their working directories and logs under `work_dir`; a serving
    container that is not healthy within `deploy_timeout` seconds fails its deployment."""
    return VertexFake(storage_url, Path(work_dir), project, region, project_number, deploy_timeout)


__all__ = ["VertexFake", "start_vertex_fake"]
