"""`AmlFake`: the assembled fake (state, HTTPS front, resources) and its test controls."""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .assets import Assets
from .blob import Storage
from .credential import FakeCredential
from .endpoints import OnlineEndpoints
from .errors import DEFAULT_CODES, AzureError, authorization_failed, throttled
from .frontend import Router, Server
from .history import History
from .jobs import Jobs
from .metrics import Metrics
from .scoring import Scoring, Stats
from .state import Store
from .tls import make_certificate
from .workspace import Workspace

if TYPE_CHECKING:
    from azurite import Azurite

LOCATION = "westeurope"
# The storage endpoint suffix the workspaceblobstore advertises. The SDK builds
# https://{account}.blob.{suffix} from it, which cannot reach Azurite: callers upload with
# azure-storage-blob themselves and pass blob URIs (README: "Storage").
STORAGE_SUFFIX = "core.windows.net"


class AmlFake:
    """A running fake of Azure Resource Manager + the Azure ML workspace REST API on `url`.
    Test controls: `job_log`, `fail_next`, `hold_jobs`, `hold_provisioning`,
    `inject_errors`, `scoring_stats`."""

    def __init__(self, blob: Azurite, work_dir: Path, subscription: str, resource_group: str,
                 workspace: str, container: str, provision_delay: float, deploy_timeout: float):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key, self.ca_bundle = make_certificate(work_dir / "tls")
        blob.create_container(container)
        self._failures: dict[str, collections.deque[tuple[int, str | None]]] = {}
        self._failures_lock = threading.Lock()
        self.store = Store(url="", subscription=subscription, resource_group=resource_group,
                           workspace=workspace, location=LOCATION, work_dir=work_dir,
                           blob_url=blob.url, account_name=blob.account_name,
                           account_key=blob.account_key, container=container)
        self.store.jobs_released.set()
        self.store.provisioning_released.set()
        router = Router(self._take_failure, self.store.check_scope)
        self.workspace = Workspace(self.store, STORAGE_SUFFIX)
        self.workspace.register(router)
        self.assets = Assets(self.store)
        self.assets.register(router)
        self.storage = Storage(self.store)
        self.jobs = Jobs(self.store, self.assets, self.storage)
        self.jobs.register(router)
        History(self.store, self.jobs).register(router)
        self.online = OnlineEndpoints(self.store, self.assets, self.storage, provision_delay,
                                      deploy_timeout)
        self.online.register(router)
        self.stats = Stats()
        Scoring(self.online, self.stats).register(router)
        Metrics(self.stats, LOCATION).register(router)
        self._server = Server(router, self.cert, self.key)
        self.url = self._server.url
        self.store.url = self.url

    # -- how clients reach it -----------------------------------------------------------------

    @property
    def subscription(self) -> str:
        return self.store.subscription

    @property
    def resource_group(self) -> str:
        return self.store.resource_group

    @property
    def workspace_name(self) -> str:
        return self.store.workspace

    @property
    def container(self) -> str:
        """The workspaceblobstore's container in Azurite."""
        return self.store.container

    @property
    def cloud_name(self) -> str:
        """The custom cloud's name for `MLClient(cloud=...)`: one per fake, because the SDK
        keeps the first metadata registered under a name for the whole process (a second
        fake under the same name would be reached at the first one's address)."""
        return f"MLFormTest-{self.url.rsplit(':', 1)[1]}"

    @property
    def cloud_metadata(self) -> dict[str, str]:
        """What `MLClient(..., cloud=self.cloud_name, cloud_metadata=...)` takes: every key
        azure/ai/ml/_azure_environments.py reads, ARM and the registry discovery at the fake."""
        return {"azure_portal": f"{self.url}/",
                "resource_manager": f"{self.url}/",
                "active_directory": f"{self.url}/",
                "aml_resource_id": f"{self.url}/",
                "storage_endpoint": STORAGE_SUFFIX,
                "registry_discovery_endpoint": f"{self.url}/"}

    def credential(self) -> FakeCredential:
        return FakeCredential()

    def env(self) -> dict[str, str]:
        """The environment a process needs to trust the fake's certificate."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca_bundle), "SSL_CERT_FILE": str(self.ca_bundle)}

    def ml_client(self, **kwargs: Any) -> Any:
        """A real `azure.ai.ml.MLClient` bound to the workspace (the process must trust
        `ca_bundle`: see `env()`). Telemetry is off: it would try to reach Application Insights."""
        from azure.ai.ml import MLClient

        return MLClient(self.credential(), self.subscription, self.resource_group,
                        self.workspace_name, cloud=self.cloud_name, cloud_metadata=self.cloud_metadata,
                        enable_telemetry=False, show_progress=False, **kwargs)

    def stop(self) -> None:
        """Stop serving and stop every process the fake started."""
        self._server.stop()
        self.store.provisioning_released.set()
        self.jobs.stop()
        self.online.stop()

    # -- test controls ------------------------------------------------------------------------

    def job_log(self, name: str) -> str:
        """What a command job's process wrote (stdout, then stderr): its user_logs/std_log.txt."""
        return self.jobs.log(name)

    def inject_errors(self, endpoint: str, deployment: str, rate: float) -> None:
        """Answer 500 for `rate` (0..1) of the scoring requests routed to that deployment,
        counted in the metrics as any 5xx is; 0 turns it off."""
        self.stats.error_rates[(endpoint, deployment)] = rate

    def scoring_stats(self, endpoint: str, deployment: str) -> dict[str, Any]:
        """`requests`, `responses` (status -> count), `mirrored` and `latencies_ms` of the
        scoring requests routed to a deployment so far."""
        events = self.stats.of(endpoint, deployment)
        return {"requests": len(events), "mirrored": sum(e.mirrored for e in events),
                "responses": dict(collections.Counter(e.status for e in events)),
                "latencies_ms": [e.latency_ms for e in events]}

    def fail_next(self, operation: str, status: int, message: str | None = None) -> None:
        """Fail the next call of `operation` (e.g. "CreateOrUpdateJob", "GetOnlineEndpoint",
        "Score") with HTTP `status` in Azure's error shape: 429 and 503 carry Retry-After, 403
        names the RBAC action and scope (AuthorizationFailed)."""
        with self._failures_lock:
            self._failures.setdefault(operation, collections.deque()).append((status, message))

    def hold_jobs(self, hold: bool) -> None:
        """While on, new jobs stay Queued; turning it off lets them run."""
        if hold:
            self.store.jobs_released.clear()
        else:
            self.store.jobs_released.set()
        self.store.provisioning_released.set()

    def hold_provisioning(self, hold: bool) -> None:
        """While on, online endpoint and deployment operations (create, update, delete) stay
        in progress (Creating/Updating/Deleting); turning it off lets them finish."""
        if hold:
            self.store.provisioning_released.clear()
        else:
            self.store.provisioning_released.set()

    def _take_failure(self, operation: str, action: str, scope: str) -> AzureError | None:
        with self._failures_lock:
            queue = self._failures.get(operation)
            if not queue:
                return None
            status, message = queue.popleft()
        if status == 403 and message is None:
            return authorization_failed(action, scope)
        if status == 429 and message is None:
            return throttled(operation)
        retry_after = 1 if status in (429, 503) else None
        return AzureError(status, DEFAULT_CODES.get(status, "InternalServerError"),
                          message or f"injected failure ({status}) for {operation}", retry_after)


def start_aml_fake(blob: Azurite, work_dir: Path,
                   subscription: str = "00000000-0000-0000-0000-000000000000",
                   resource_group: str = "rg", workspace: str = "ws", *,
                   container: str = "azureml-blobstore", provision_delay: float = 0.3,
                   deploy_timeout: float = 60.0) -> AmlFake:
    """Start the fake on a free loopback port (https, self-signed for 127.0.0.1). Its
    workspaceblobstore is `container` in `blob` (Azurite); jobs and scoring hosts keep their
    directories and logs under `work_dir`. Endpoints and deployments stay Creating/Updating/
    Deleting for at least `provision_delay` seconds; a scoring host not ready within
    `deploy_timeout` seconds fails its deployment."""
    return AmlFake(blob, Path(work_dir), subscription, resource_group, workspace, container,
                   provision_delay, deploy_timeout)


__all__ = ["AmlFake", "start_aml_fake"]
