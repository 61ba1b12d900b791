"""One command's view of a stack: its spec, variables, state backend and providers.

Commands that write state hold the backend's lock for their whole run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .diagnostics import MlformError
from .state.backend import Backend, LockHeld, LockInfo
from .state.model import State


@dataclass
class Options:
    stack_dir: Path = Path(".")
    vars: list[str] = field(default_factory=list)
    var_files: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    parallelism: int = 10
    lock_timeout: float = 0.0
    color: bool = True


class Session:
    def __init__(self, options: Options, command: str):
        self.options = options
        self.command = command
        self.dir = Path(options.stack_dir)
        self._lock_info: LockInfo | None = None
        from .state.private import tighten_stack_dir

        tighten_stack_dir(self.dir)

    @cached_property
    def stack(self):
        import gc

        from .spec.loader import load_stack

        stack = load_stack(self.dir)
        # The spec lives as long as the command: keep the collector from rescanning it.
        gc.freeze()
        return stack

    @cached_property
    def variables(self) -> dict[str, Any]:
        from .spec import variables as v

        cli = v.parse_cli_vars(self.options.vars)
        files, where = v.read_var_files(self.options.var_files, self.dir)
        return v.resolve(self.stack.variables, self.stack.positions, cli, files, where)

    @cached_property
    def backend(self) -> Backend:
        """The spec's backend, checked against the backend and state this stack last used."""
        from .state.record import backend_settings
        from .state.tracked import TrackedBackend

        cfg = self.stack.file.backend
        return TrackedBackend(make_backend(self.dir, cfg), backend_settings(cfg), self.dir,
                              opener=lambda settings: backend_from_settings(self.dir, settings),
                              location=self.stack.location(("backend",), key=True))

    @cached_property
    def providers(self):
        from .providerset import ProviderSet

        return ProviderSet.for_stack(self.stack)

    def read_state(self) -> State:
        state = self.backend.read()
        if state is None:
            return State.new(self.stack.name)
        return state

    @contextlib.contextmanager
    def locked(self):
        info = LockInfo.mine(self.command)
        try:
            self.backend.lock(info, timeout=self.options.lock_timeout)
        except LockHeld as exc:
            raise lock_held_error(exc) from None
        self._lock_info = info
        try:
            yield info
        finally:
            with contextlib.suppress(Exception):
                self.backend.unlock(info.id)
            self._lock_info = None

    def close(self) -> None:
        if "providers" in self.__dict__:
            self.providers.close()


def lock_held_error(exc: LockHeld) -> MlformError:
    """The error for a command refused by the state lock: who holds it, and what to do."""
    holder = exc.holder.describe() if exc.holder else "another process"
    return MlformError.simple(
        f"the state is locked: {holder}",
        detail=f"lock: {exc.where}",
        help="wait for that command to finish (or pass --lock-timeout 5m to wait); "
             "if it died on another machine, run "
             f"'mlform state unlock {exc.holder.id if exc.holder else 'ID'}'")


def make_backend(stack_dir: Path, cfg) -> Backend:
    if cfg.type == "s3":
        if not cfg.bucket or not cfg.key:
            raise MlformError.simple("the s3 backend needs 'bucket' and 'key'",
                                     help="backend: {type: s3, bucket: my-bucket, "
                                          "key: stacks/fraud/state.json, region: us-east-1}")
        try:
            from .state.s3_backend import S3Backend
        except ImportError as exc:
            raise MlformError.simple(f"the s3 backend cannot be loaded: {exc}",
                                     help="pip install 'mlform[aws]'") from None
        return S3Backend(bucket=cfg.bucket, key=cfg.key, region=cfg.region,
                         endpoint_url=cfg.endpoint_url)
    if cfg.type == "gcs":
        from .state.gcs_backend import GcsBackend

        return GcsBackend(bucket=cfg.bucket, prefix=cfg.prefix, endpoint_url=cfg.endpoint_url)
    if cfg.type == "azureblob":
        from .state.azureblob_backend import AzureBlobBackend

        if not cfg.storage_account or not cfg.container or not cfg.key:
            raise MlformError.simple("the azureblob backend needs 'storage_account', "
                                     "'container' and 'key'")
        return AzureBlobBackend(storage_account=cfg.storage_account, container=cfg.container,
                                key=cfg.key, account_url=cfg.account_url)
    from .state.local_backend import LocalBackend

    return LocalBackend(stack_dir, cfg.path)


def backend_from_settings(stack_dir: Path, settings: dict[str, Any]) -> Backend:
    """The backend that recorded settings (`state.record.backend_settings`) describe."""
    from types import SimpleNamespace

    fields = ("type", "path", "bucket", "key", "prefix", "region", "endpoint_url",
              "storage_account", "container", "account_url")
    return make_backend(stack_dir, SimpleNamespace(**{f: settings.get(f) for f in fields}))


def parse_duration(text: str) -> float:
    """A duration flag ('30s', '5m', a number of seconds) or a clear error."""
    from .durations import seconds

    try:
        return seconds(text)
    except ValueError as exc:
        raise MlformError.simple(str(exc), help="write a duration such as 30s, 5m, 2h or 1d") from None


def is_interactive() -> bool:
    return sys.stdin.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")
