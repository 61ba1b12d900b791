"""The aws provider's SDK clients: made once per service, even under parallel verbs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from mlform.providers.aws.clients import Clients
from mlform.providers.aws.config import load


def test_many_threads_asking_at_once_get_one_client_per_service(monkeypatch):
    made: list[str] = []

    def slow_make(self: Clients, service: str) -> object:
        # A slow build is what opens the window in which two threads both miss the cache.
        made.append(service)
        time.sleep(0.05)
        return object()

    monkeypatch.setattr(Clients, "_make", slow_make)
    clients = Clients(load({"region": "us-east-1", "role_arn": "arn:aws:iam::123456789012:role/r",
                            "bucket": "bkt"}))
    start = threading.Barrier(16)

    def ask(i: int) -> object:
        start.wait()
        return clients.get(("s3", "sagemaker")[i % 2])

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(ask, range(16)))
    assert sorted(made) == ["s3", "sagemaker"]
    assert {id(c) for c in got[0::2]} == {id(clients.s3)}
    assert {id(c) for c in got[1::2]} == {id(clients.sagemaker)}
