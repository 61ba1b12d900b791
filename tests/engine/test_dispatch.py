"""The dispatching provider: one handler per resource type, even under parallel verbs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlform.engine.dispatch import DispatchingProvider, ResourceHandler
from mlform.engine.provider import (
    CheckRequest,
    DiffRequest,
    ObserveRequest,
    ProviderContext,
    ResourceRef,
    TickRequest,
)


class Counting(DispatchingProvider):
    """Builds `ResourceHandler`s slowly, counting them: a slow build is what opens the
    window in which two threads would both miss an unlocked cache."""

    handlers = {"dataset": "dispatch:ResourceHandler"}
    handler_package = "mlform.engine"

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self.built = 0

    def make_handler(self, cls: type[ResourceHandler]) -> ResourceHandler:
        self.built += 1
        time.sleep(0.05)
        return cls(self.ctx)


def _provider(tmp_path: Path) -> Counting:
    return Counting(ProviderContext(stack="s", stack_dir=tmp_path, provider_name="p",
                                    config={}, data_dir=tmp_path / "p"))


def test_many_threads_asking_at_once_get_one_handler(tmp_path):
    provider = _provider(tmp_path)
    start = threading.Barrier(16)

    def ask(_: int) -> ResourceHandler:
        start.wait()
        return provider.handler("dataset")

    with ThreadPoolExecutor(16) as pool:
        handlers = list(pool.map(ask, range(16)))
    assert provider.built == 1
    assert len({id(h) for h in handlers}) == 1


def test_an_unknown_type_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="provider 'p' does not realise 'endpoint' resources"):
        _provider(tmp_path).handler("endpoint")


def test_the_base_handler_defaults(tmp_path):
    # What a handler that writes only the four required verbs answers to the rest.
    provider = _provider(tmp_path)
    ref = ResourceRef("d", "dataset")
    assert provider.check(CheckRequest(ref, {"source": "a.csv"})).problems == []
    changes = provider.diff(DiffRequest(ref, {"source": "a.csv"}, {}, {"source": "b.csv"}))
    assert [(c.path, c.before, c.after) for c in changes.changes] == [("source", "a.csv",
                                                                      "b.csv")]
    assert provider.tick(TickRequest(ref, {}, {}, {}, {}, 0.0)) is None
    with pytest.raises(NotImplementedError, match="ResourceHandler.observe"):
        provider.observe(ObserveRequest(ref, None, None))


class DatasetHandler(ResourceHandler):
    rtype = "dataset"


def test_spec_is_the_portable_model_with_secrets_revealed(tmp_path):
    from mlform.engine.values import Secret

    handler = DatasetHandler(_provider(tmp_path).ctx)
    spec = handler.spec({"source": Secret("a.csv")})
    assert (type(spec).__name__, spec.source) == ("Dataset", "a.csv")
