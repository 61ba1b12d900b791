"""The server process: `python -m mlform.providers.local.serving.server DIR FD`.

Serves `DIR/config.json` with uvicorn on the listening socket it inherits as file
descriptor FD, until SIGTERM. The provider binds that socket before starting the
process, so the port is known (and taken) before the process runs and only the
provider writes `server.json`.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
from pathlib import Path

UVICORN_SETTINGS = {
    "log_level": "warning",
    "access_log": False,
    "lifespan": "on",
    "timeout_graceful_shutdown": 5,
}
"""Also used by bench/serving.py, so the baseline runs under the same settings. The
endpoint's server adds its HTTP protocol (`protocol.bounded_protocol`), which bounds
request heads and slow clients."""


def seed_for(endpoint: str) -> int:
    return int.from_bytes(hashlib.sha256(endpoint.encode()).digest()[:4], "big")


def main(argv: list[str]) -> int:
    import uvicorn

    from .app import build_app
    from .config import CONFIG_FILE, read_config
    from .process import TOKEN_FILE, read_token
    from .protocol import bounded_protocol

    directory, fd = Path(argv[0]), int(argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = read_config(directory / CONFIG_FILE)
    token = read_token(directory)
    if not token:
        raise SystemExit(f"{directory / TOKEN_FILE} is missing: the control routes would "
                         "be open to anyone; start the server through the provider")
    sock = socket.socket(fileno=fd)
    app = build_app(config, directory, control_token=token, seed=seed_for(config.endpoint))
    # the bounds on heads and idle connections follow the config being served
    protocol = bounded_protocol(lambda: app.serving.config.limits)
    uvicorn.Server(uvicorn.Config(app, http=protocol, **UVICORN_SETTINGS)).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
