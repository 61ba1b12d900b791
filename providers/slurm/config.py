"""The provider's settings, as written under `providers: {<name>: {type: slurm, ...}}`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlform.engine.diagnostics import did_you_mean
from mlform.engine.durations import seconds
from mlform.engine.provider import Problem
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

TIME_LIMIT = re.compile(r"^(\d+|\d+:\d{1,2}(:\d{1,2})?|\d+-\d+(:\d{1,2}(:\d{1,2})?)?|"
                        r"UNLIMITED|INFINITE)$")
"""The forms sbatch's --time takes: minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]."""


class SlurmConfig(BaseModel):
    """Settings of one `slurm` provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "slurm"
    storage: str = Field(min_length=1)
    """A directory on the filesystem every node shares with this machine (absolute, or
    relative to the stack directory): datasets, job scripts, logs, outcome records,
    artifacts and the model registry live under `<storage>/<stack>/`."""
    partition: str | None = None
    """`--partition` of every job; the cluster's default partition when unset."""
    account: str | None = None
    """`--account` of every job."""
    time_limit: str | None = None
    """`--time` of every job (`90`, `4:00:00`, `1-12`); a job's own `timeout` wins."""
    qos: str | None = None
    """`--qos` of every job."""
    python: str | None = None
    """The interpreter jobs run mlform's runtime with; default the one running mlform
    (`sys.executable`): mlform must be installed at that path on every node."""
    sbatch_args: list[str] = Field(default_factory=list)
    """More sbatch options for every job (`--constraint=a100`, `--exclusive`)."""
    poll_seconds: float = Field(default=2.0, gt=0)
    """Seconds between two reads of a queued or running job."""

    @field_validator("time_limit")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not TIME_LIMIT.match(value):
            raise ValueError(f"'{value}' is not a Slurm time limit: write minutes ('90'), "
                             "'HH:MM:SS' or 'D-HH:MM:SS'")
        return value

    @field_validator("sbatch_args")
    @classmethod
    def _owned(cls, value: list[str]) -> list[str]:
        for arg in value:
            if arg.split("=")[0] in OWN_FLAGS:
                raise ValueError(f"'{arg}': mlform sets {arg.split('=')[0]} itself "
                                 "(it names, owns and places the job)")
        return value

    def root(self, stack_dir: Path, stack: str) -> Path:
        """Where this stack's files live on the shared filesystem."""
        base = Path(self.storage).expanduser()
        return (base if base.is_absolute() else stack_dir / base) / stack


OWN_FLAGS = frozenset({"--job-name", "-J", "--comment", "--output", "-o", "--error", "-e",
                       "--chdir", "-D", "--parsable", "--wrap"})


def load(config: dict[str, Any]) -> SlurmConfig:
    return SlurmConfig.model_validate(config or {})


def problems(config: dict[str, Any]) -> list[Problem]:
    """Every problem with `config`, each at the setting it concerns, with the fix."""
    try:
        load(config)
    except ValidationError as exc:
        return [_problem(err) for err in exc.errors()]
    return []


def _problem(err: Any) -> Problem:
    path = tuple(err["loc"])
    name = str(path[0]) if path else ""
    if err["type"] == "missing":
        return Problem(path, "required setting is missing", key=True,
                       help="add the shared filesystem the nodes and this machine both see, "
                            "e.g. 'storage: /shared/mlform'" if name == "storage"
                       else f"add '{name}:' to the provider")
    if err["type"] == "extra_forbidden":
        return Problem(path, err["msg"].lower(), key=True,
                       help=did_you_mean(name, SlurmConfig.model_fields)
                       or f"settings: {', '.join(SlurmConfig.model_fields)}")
    return Problem(path, str(err["msg"]).removeprefix("Value error, "))


def job_minutes(timeout: str | None) -> int | None:
    """A job's `timeout` in whole minutes for --time (at least one), or None."""
    if not timeout:
        return None
    return max(1, -(-int(seconds(timeout)) // 60))
