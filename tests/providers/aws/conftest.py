"""A moto server on loopback for the aws provider's tests, and providers pointed at it."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import moto_extensions
import pytest

REGION = "us-east-1"
BUCKET = "mlform-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/mlform-sagemaker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    moto_extensions.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean emulator with the provider's bucket; dummy credentials in the environment."""
    import boto3
    import httpx

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    httpx.post(f"{moto_url}/moto-api/reset")
    moto_extensions.SCRIPT.reset()
    moto_extensions.SCRIPT.settle_after = 2
    boto3.client("s3", region_name=REGION, endpoint_url=moto_url).create_bucket(Bucket=BUCKET)
    yield moto_url


@pytest.fixture
def client(aws: str) -> Callable[[str], Any]:
    import boto3

    return lambda service: boto3.client(service, region_name=REGION, endpoint_url=aws)


@pytest.fixture
def provider_config(aws: str) -> dict[str, Any]:
    return {"type": "aws", "region": REGION, "role_arn": ROLE, "bucket": BUCKET,
            "endpoint_url": aws, "poll_interval": 0.01, "max_attempts": 2}


@pytest.fixture
def make_provider(tmp_path: Path, provider_config: dict[str, Any]):
    from mlform.engine.provider import ProviderContext
    from mlform.providers.aws.provider import AwsProvider

    made = []

    def make(stack: str = "fraud", **overrides: Any) -> AwsProvider:
        ctx = ProviderContext(stack=stack, stack_dir=tmp_path, provider_name="sagemaker",
                              config={**provider_config, **overrides},
                              data_dir=tmp_path / ".mlform" / "sagemaker")
        made.append(AwsProvider(ctx))
        return made[-1]

    yield make
    for provider in made:
        provider.close()
