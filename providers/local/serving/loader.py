"""The loaded models of a server, by model uri.

A new config's models are loaded beside the ones serving now, and only once all
of them loaded does traffic move; models no config uses any more are dropped.
"""

from __future__ import annotations

import logging

from mlform.ml.artifact import Predictor, load_predictor

log = logging.getLogger("mlform.serving")


def import_torch() -> None:
    """Import what loading and predicting need, and exempt it from garbage collection.

    The modules torch creates live as long as the process; left to the collector,
    every full collection scans all of them again, and a busy server (whose queued
    log rows survive long enough to age) pays for it on every few requests.
    Models are loaded after the freeze, so a model that is dropped is collected.
    """
    import gc

    import torch
    import torch.export  # noqa: F401 - loaded models need it

    gc.freeze()


def choose_device(gpus: int) -> str:
    import torch

    if gpus > 0 and torch.cuda.is_available():
        return "cuda"
    if gpus > 0:
        log.warning("compute.gpus is %d but no GPU is visible: serving on the CPU", gpus)
    return "cpu"


class ModelStore:
    def __init__(self) -> None:
        self._loaded: dict[str, Predictor] = {}

    def __getitem__(self, uri: str) -> Predictor:
        return self._loaded[uri]

    def loaded(self) -> list[str]:
        return sorted(self._loaded)

    def load(self, paths: dict[str, str], device: str) -> None:
        """Load every model of `paths` ({uri: artifact directory}) not loaded yet;
        raises ValueError naming the model that failed, leaving the others as they were."""
        fresh = {}
        for uri, path in paths.items():
            if uri in self._loaded:
                continue
            try:
                fresh[uri] = load_predictor(path, device=device)
            except Exception as e:  # any failure to load is reported, not raised through
                raise ValueError(f"model '{uri}' failed to load from {path}: {e}") from e
            log.info("loaded model %s from %s on %s", uri, path, device)
        self._loaded.update(fresh)

    def keep_only(self, uris: set[str]) -> None:
        for uri in set(self._loaded) - uris:
            del self._loaded[uri]
            log.info("unloaded model %s", uri)
