"""Model aliases that follow what is really served.

    registry/<model>/aliases.json   {"champion": 3}          where each alias points
    registry/<model>/pending.json   {"champion": 4}          moves waiting on a rollout

A newly registered version takes its aliases at once only when no endpoint
serves the model. When one does, the moves wait in `pending.json`: the endpoint
makes them when its rollout of that version completes; a rollback leaves them
waiting and moves any alias that points at the rejected version back to the one
still served. So `champion` never names a version that lost its canary.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..paths import SCHEME, LocalPaths
from ..training.runs import read_json, write_json

ALIASES = "aliases.json"
PENDING = "pending.json"


def current(paths: LocalPaths, model: str) -> dict[str, int]:
    return read_json(paths.registry(model) / ALIASES) or {}


def pending(paths: LocalPaths, model: str) -> dict[str, int]:
    return read_json(paths.registry(model) / PENDING) or {}


def assign(paths: LocalPaths, model: str, aliases: Iterable[str], version: int,
           served: bool) -> None:
    """Point `aliases` at `version` now, or, when an endpoint serves the model (`served`),
    once an endpoint's rollout of `version` completes."""
    aliases = list(aliases)
    now = current(paths, model)
    if not served or all(now.get(a) == version for a in aliases):
        _write(paths.registry(model) / ALIASES, now, {**now, **dict.fromkeys(aliases, version)})
        waiting = pending(paths, model)
        _write(paths.registry(model) / PENDING, waiting,
               {a: v for a, v in waiting.items() if a not in aliases})
        return
    waiting = pending(paths, model)
    _write(paths.registry(model) / PENDING, waiting, {**waiting, **dict.fromkeys(aliases, version)})


def rollout_completed(paths: LocalPaths, served_uris: Iterable[str]) -> None:
    """Make the moves that waited on the versions now served."""
    for model, version in _versions(served_uris):
        waiting = pending(paths, model)
        moving = {a for a, v in waiting.items() if v == version}
        if not moving:
            continue
        now = current(paths, model)
        _write(paths.registry(model) / ALIASES, now, {**now, **dict.fromkeys(moving, version)})
        _write(paths.registry(model) / PENDING, waiting,
               {a: v for a, v in waiting.items() if a not in moving})


def rolled_back(paths: LocalPaths, rejected_uris: Iterable[str],
                served_uris: Iterable[str]) -> None:
    """Point any alias that names a rejected version back at the version of the same model
    still served. The moves waiting on it keep waiting: a later rollout of the same version
    that completes makes them."""
    served = dict(_versions(served_uris))
    for model, version in _versions(rejected_uris):
        now = current(paths, model)
        if model in served:
            _write(paths.registry(model) / ALIASES, now,
                   {a: (served[model] if v == version else v) for a, v in now.items()})


def _versions(uris: Iterable[str]) -> list[tuple[str, int]]:
    prefix = f"{SCHEME}models/"
    out = []
    for uri in uris:
        model, _, version = uri[len(prefix):].rpartition("/")
        if uri.startswith(prefix) and model and version.isdigit():
            out.append((model, int(version)))
    return out


def _write(path: Path, before: dict, after: dict) -> None:
    if after == before:
        return
    if not after and path.name != ALIASES:
        path.unlink(missing_ok=True)
        return
    if path.parent.exists():
        write_json(path, after)
