"""What every per-type handler shares: the settings, the shared storage, the job runner,
and the checks of `provider_options.slurm`."""

from __future__ import annotations

import sys
from typing import Any

from mlform.engine.diagnostics import did_you_mean
from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import CheckRequest, CheckResponse, Problem, ProviderContext
from mlform.engine.values import contains_unknown

from .config import SlurmConfig
from .jobs import Runner
from .storage import Storage

OPTIONS = ("partition", "account", "qos", "time_limit", "sbatch_args")
"""What `provider_options.slurm` may set on a job: the provider's settings of that name."""


class Handler(ResourceHandler):
    """Base of the handlers; `rtype` names the resource type it realises."""

    def __init__(self, ctx: ProviderContext, cfg: SlurmConfig):
        super().__init__(ctx)
        self.cfg = cfg
        self.storage = Storage(cfg.root(ctx.stack_dir, ctx.stack))
        self.runner = Runner(ctx.stack, cfg.python or sys.executable, cfg.poll_seconds)

    def check(self, req: CheckRequest) -> CheckResponse:
        return CheckResponse(problems=option_problems(req.inputs))

    def job_cfg(self, spec: Any) -> tuple[SlurmConfig, dict[str, Any]]:
        """The provider's settings with the resource's `provider_options.slurm` over them,
        and those options."""
        options = dict(spec.provider_options.get("slurm", {}))
        merged = {k: v for k, v in options.items() if k in OPTIONS and k != "sbatch_args"}
        return self.cfg.model_copy(update=merged), options


def option_problems(inputs: dict[str, Any]) -> list[Problem]:
    options = (inputs.get("provider_options") or {}).get("slurm")
    if not isinstance(options, dict) or contains_unknown(options):
        return []
    problems = []
    for key, value in options.items():
        if key not in OPTIONS:
            problems.append(Problem(("provider_options", "slurm", key),
                                    f"unknown option '{key}'", key=True,
                                    help=did_you_mean(key, OPTIONS)
                                    or f"options: {', '.join(OPTIONS)}"))
        elif key == "sbatch_args" and not (isinstance(value, list)
                                           and all(isinstance(a, str) for a in value)):
            problems.append(Problem(("provider_options", "slurm", key),
                                    "must be a list of sbatch options",
                                    help="write sbatch_args: ['--constraint=a100']"))
    return problems
