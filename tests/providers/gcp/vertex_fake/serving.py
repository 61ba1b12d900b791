"""A deployed model's serving container: started from the Model's `containerSpec` with the
custom-container environment Vertex sets, ready once its health route answers 200, and the
target the prediction front forwards requests to."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .containers import Process, argv_of, env_of, free_port, wait_healthy
from .errors import ApiError
from .state import Store


@dataclass
class Replica:
    """One running serving container (the fake runs one per deployed model, whatever the
    replica counts say)."""

    process: Process
    port: int
    predict_route: str
    health_route: str

    def post(self, body: bytes, content_type: str = "application/json",
             timeout: float = 60.0) -> tuple[int, bytes]:
        """POST `body` to the predict route; (status, reply body). A container that cannot be
        reached answers 503, as the service's frontend does."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{self.predict_route}",
                                         data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            return 503, json.dumps({"error": f"the serving container is unreachable: {e}"}).encode()

    def stop(self) -> None:
        self.process.stop()


def start_replica(store: Store, model: dict[str, Any], endpoint_id: str, deployed_model_id: str,
                  directory: Path, timeout: float) -> Replica:
    """Start `model`'s serving container and wait until it is healthy; ApiError (with the
    container's stderr tail) when it exits or does not become healthy within `timeout`."""
    spec = model.get("containerSpec") or {}
    argv = argv_of(spec, f"model {model['name']}@{model['versionId']}")
    port = free_port()
    default_route = f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_model_id}"
    predict_route = spec.get("predictRoute") or default_route + ":predict"
    health_route = spec.get("healthRoute") or default_route
    artifacts = model.get("artifactUri", "")
    env = env_of(spec, store.storage_url, directory, {
        "AIP_HTTP_PORT": str(port), "AIP_PREDICT_ROUTE": predict_route,
        "AIP_HEALTH_ROUTE": health_route, "AIP_STORAGE_URI": artifacts, "AIP_MODEL_DIR": artifacts,
        "AIP_DEPLOYED_MODEL_ID": deployed_model_id, "AIP_ENDPOINT_ID": endpoint_id,
        "AIP_PROJECT_NUMBER": store.project_number, "AIP_MODE": "PREDICTION",
        "CLOUD_ML_PROJECT_ID": store.project})
    process = Process.start(argv, env, directory)
    started = time.monotonic()
    problem = wait_healthy(process, port, health_route, timeout)
    if problem is not None:
        raise ApiError("FAILED_PRECONDITION",
                       f"Model server never became ready ({time.monotonic() - started:.0f}s): {problem}")
    return Replica(process, port, predict_route, health_route)
