"""boto3 clients for one provider: created on first use, retried in adaptive mode."""

from __future__ import annotations

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

    def get(self, service: str) -> Any:
        if service not in self._clients:
            boto3 = boto3_module()
            from botocore.config import Config

            retries = {"mode": "adaptive", "max_attempts": self.cfg.max_attempts}
            self._clients[service] = boto3.session.Session().client(
                service, region_name=self.cfg.region, endpoint_url=self.cfg.endpoint_url,
                config=Config(retries=retries, user_agent_extra="mlform"))
        return self._clients[service]

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
        for client in self._clients.values():
            client.close()
        self._clients.clear()
