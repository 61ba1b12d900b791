"""A gateway's routing file, `gateway.json` in its directory: its backends and weights.

    {"stack": "fraud", "stack_dir": "/path/to/stack",
     "backends": {"<key>": {"resource", "provider", "provider_type", "config",
                            "outputs", "rollout", "rollback"}},
     "weights": {"<key>": 90.0, ...}}

A backend's key is its endpoint's resource name and url, so that an endpoint that
moved (same name, new url) is a second backend beside the first while traffic
moves. The file is the gateway's state: the handler replaces it atomically at every
step and the proxy reads it again whenever it changes, so a cutover killed at any
moment resumes from the weights it holds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROUTES_FILE = "gateway.json"


@dataclass(frozen=True)
class Routes:
    stack: str
    stack_dir: str
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    def share(self) -> dict[str, float]:
        """Percent of requests per backend (weights normalised to 100)."""
        total = sum(w for w in self.weights.values() if w > 0)
        return {k: round(100.0 * w / total, 2) if total else 0.0
                for k, w in self.weights.items()}

    def by_resource(self) -> dict[str, float]:
        """The share per endpoint resource name (what the gateway's outputs show)."""
        out: dict[str, float] = {}
        for key, share in self.share().items():
            name = self.backends[key]["resource"]
            out[name] = round(out.get(name, 0.0) + share, 2)
        return out

    def with_weights(self, weights: dict[str, float],
                     backends: dict[str, dict[str, Any]] | None = None) -> Routes:
        return Routes(self.stack, self.stack_dir, backends or self.backends, dict(weights))


def key_of(backend: dict[str, Any]) -> str:
    return f"{backend['resource']}@{(backend.get('outputs') or {}).get('url', '')}"


def read(directory: Path) -> Routes | None:
    try:
        data = json.loads((Path(directory) / ROUTES_FILE).read_text())
        return Routes(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write(directory: Path, routes: Routes) -> None:
    path = Path(directory) / ROUTES_FILE
    tmp = path.with_name(f".{ROUTES_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"stack": routes.stack, "stack_dir": routes.stack_dir,
                   "backends": routes.backends, "weights": routes.weights}, f, indent=1)
    os.replace(tmp, path)
