"""boto3 clients for one provider: created on first use, retried in adaptive mode.

Verbs run on parallel threads and a boto3 session is not thread-safe, so each client
is made under a lock, from its own session, exactly once; a made client is safe to
share (botocore clients are thread-safe).
"""

from __future__ import annotations

import threading
from typing import Any

from .config import AwsConfig
from .errors import AwsError


def boto3_module() -> Any:
    try:
        import boto3
    except ImportError:
        raise AwsError("the aws provider needs boto3: pip install 'mlform[aws]'") from None
    return boto3


class Clients:
    """One client per service, shared by every handler of the provider."""

    def __init__(self, cfg: AwsConfig):
        self.cfg = cfg
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        found = self._clients.get(service)
        if found is not None:  # the common case takes no lock
            return found
        with self._lock:
            if service not in self._clients:  # another thread may have made it meanwhile
                self._clients[service] = self._make(service)
            return self._clients[service]

    def _make(self, service: str) -> Any:
        boto3 = boto3_module()
        from botocore.config import Config

        retries = {"mode": "adaptive", "max_attempts": self.cfg.max_attempts}
        return boto3.session.Session().client(
            service, region_name=self.cfg.region, endpoint_url=self.cfg.endpoint_url,
            config=Config(retries=retries, user_agent_extra="mlform"))

    @property
    def s3(self) -> Any:
        return self.get("s3")

    @property
    def sagemaker(self) -> Any:
        return self.get("sagemaker")

    @property
    def cloudwatch(self) -> Any:
        return self.get("cloudwatch")

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
