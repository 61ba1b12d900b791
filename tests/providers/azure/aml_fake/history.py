"""The workspace's data-plane side that the SDK reaches through the discovery URL: discovery
itself, and run history for jobs (a run's status, times, error and log files, and the PATCH
the SDK uses to update an existing job's tags, description and properties).

Everything is served by the same https server: the discovery document points every service
("api", "history", "experimentation", ...) back at the fake.
"""

from __future__ import annotations

from .errors import AzureError
from .frontend import Request, Response, Router
from .jobs import Jobs
from .state import PROVIDER, Store

HISTORY = (r"/history/v1\.0/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
           r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)")


class History:
    def __init__(self, store: Store, jobs: Jobs):
        self.store = store
        self.jobs = jobs

    def register(self, router: Router) -> None:
        act = f"{PROVIDER}/workspaces/experiments/runs"
        router.add("GET", r"/discovery", "Discovery", f"{PROVIDER}/workspaces/read", self._discovery)
        router.add("GET", HISTORY + r"/runs/(?P<name>[^/]+)", "GetRun", f"{act}/read",
                   lambda r: Response(200, self.jobs.run_record(r.groups["name"])))
        router.add("GET", HISTORY + r"/runs/(?P<name>[^/]+)/details", "GetRunDetails",
                   f"{act}/read", self._details)
        router.add("PATCH", HISTORY + r"/experiments/(?P<exp>[^/]+)/runs/(?P<name>[^/]+)",
                   "ModifyRun", f"{act}/write", self._modify)
        router.add("GET", r"/logs/(?P<name>[^/]+)/user_logs/std_log\.txt", "GetRunLog",
                   f"{act}/read", lambda r: Response(200, self.jobs.log(r.groups["name"]).encode()))

    def _discovery(self, request: Request) -> Response:
        url = self.store.url
        return Response(200, {key: url for key in (
            "api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling",
            "modelmanagement", "pipelines", "studiotrainingservice", "execution")})

    def _details(self, request: Request) -> Response:
        name = request.groups["name"]
        record = self.jobs.run_record(name)
        record["logFiles"] = {"user_logs/std_log.txt": f"{self.store.url}/logs/{name}/user_logs/std_log.txt"}
        return Response(200, record)

    def _modify(self, request: Request) -> Response:
        """What the SDK sends to update an existing job: tags (replaced), properties (new keys
        only: the service refuses to change an existing property), description, displayName."""
        body = request.json()
        name = request.groups["name"]
        with self.store.lock:
            run = self.jobs.runs.get(name)
            if run is None:
                raise AzureError(404, "UserError", f"Run {name} not found.")
            props = run.resource["properties"]
            for key, value in (body.get("properties") or {}).items():
                if key in props["properties"] and props["properties"][key] != value:
                    raise AzureError(400, "UserError",
                                     f"Property {key} already exists on run {name} and cannot be "
                                     "changed.")
            props["properties"].update(body.get("properties") or {})
            if body.get("tags") is not None:
                props["tags"] = dict(body["tags"])
            for key in ("description", "displayName"):
                if body.get(key) is not None:
                    props[key] = body[key]
        return Response(200, self.jobs.run_record(name))
