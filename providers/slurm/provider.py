"""The slurm provider: each verb goes to the handler of the resource's type.

Training and batch jobs run as Slurm batch jobs; datasets, runs and the model
registry live on the shared filesystem. Endpoints, monitors and retraining policies
are not Slurm things: the provider does not realise them, so a stack that gives one
to it is refused at plan (serve with the local or ray provider in the same stack).
"""

from __future__ import annotations

import threading
from typing import Any

from mlform.engine.capabilities import TypeSupport, Unsupported
from mlform.engine.dispatch import DispatchingProvider
from mlform.engine.provider import Problem, ProviderContext

from . import config as slurm_config
from .commands import SlurmError

HANDLERS = {
    "dataset": "dataset:DatasetHandler",
    "training_job": "training:TrainingJobHandler",
    "model": "model:ModelHandler",
    "batch_job": "batch:BatchJobHandler",
}

BYOM_HELP = ("registering a model file (`source:`) is implemented on the local provider so "
             "far: register it there, or train it with a training_job")

CAPABILITIES = {
    "dataset": TypeSupport(outputs=frozenset({"uri", "version", "path", "rows", "columns"})),
    "training_job": TypeSupport(
        outputs=frozenset({"artifact", "run_id", "metrics", "device", "device_note",
                           "code_digest", "data_version", "log"}),
        unsupported=(Unsupported(("feature_view",), "the slurm provider trains on datasets; "
                                 "train on a feature view with the local provider"),
                     Unsupported(("labels",), "labels are joined onto a feature view, which "
                                 "the slurm provider does not realise"))),
    "model": TypeSupport(
        outputs=frozenset({"uri", "name", "version", "gates", "aliases", "versions"}),
        unsupported=(Unsupported(("retirement",), "the shared-storage registry keeps every "
                                 "version; remove old ones from the storage", noop=True),
                     Unsupported(("source",), BYOM_HELP))),
    "batch_job": TypeSupport(
        outputs=frozenset({"output_uri", "rows"}),
        unsupported=(Unsupported(("feature_view",), "the slurm provider scores datasets"),
                     Unsupported(("schedule",), "a Slurm batch job runs once per apply; "
                                 "schedule re-scoring with the local provider or cron "
                                 "(scrontab)"))),
}
"""What the slurm provider realises of each portable type."""


SERVE_ELSEWHERE = ("Slurm runs batch work, not services: serve the model with a `local` or "
                   "`ray` provider in the same stack (docs/providers/slurm.md)")


class SlurmProvider(DispatchingProvider):
    resource_types = frozenset(HANDLERS)
    capabilities = CAPABILITIES
    unsupported_types = {"endpoint": SERVE_ELSEWHERE,
                         "monitor": "monitors watch an endpoint: " + SERVE_ELSEWHERE,
                         "retraining_policy": "retraining policies act on monitors: "
                                              + SERVE_ELSEWHERE,
                         "feature_view": "serve features with the `local` provider"}
    handlers = HANDLERS
    handler_package = __package__

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._cfg: slurm_config.SlurmConfig | None = None
        self._cfg_lock = threading.Lock()

    def validate_config(self) -> list[str | Problem]:
        return list(slurm_config.problems(self.ctx.config))

    @property
    def cfg(self) -> slurm_config.SlurmConfig:
        with self._cfg_lock:
            if self._cfg is None:
                problems = self.validate_config()
                if problems:
                    raise SlurmError(f"provider '{self.ctx.provider_name}' is misconfigured: "
                                     + "; ".join(map(str, problems)))
                self._cfg = slurm_config.load(self.ctx.config)
            return self._cfg

    def make_handler(self, cls: type) -> Any:
        return cls(self.ctx, self.cfg)

    def failure(self, exc: Exception, req: Any) -> str | None:
        if isinstance(exc, SlurmError | ValueError | OSError):
            return f"{req.resource.type} '{req.resource.name}': {exc}"
        return None

    def list_owned(self) -> list[tuple[str, str]]:
        """This stack's queued and running jobs, by the ownership in their comment."""
        from .commands import every_job
        from .naming import owner

        found = []
        for job in every_job():
            who = owner(job.comment)
            # a COMPLETING job runs no more (a cancelled one passes through it, for as long
            # as Slurm takes to clean up after it): nothing is left to stop
            if job.active and job.state != "COMPLETING" and who.get("stack") == self.ctx.stack:
                found.append((who["type"], job.name))
        return sorted(set(found))
