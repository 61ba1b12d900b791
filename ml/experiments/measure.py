"""An endpoint's experiment measured from what its server logged: the verdict an
endpoint handler's `tick` returns, on every provider whose server writes the request and
feedback logs (`mlform.ml.serving.reqlog`).

    measure        the verdict over the endpoint folder's requests.jsonl and feedback.jsonl,
                   with what the server measured per variant (requests, errors, p99)
    serving_stats  that per-variant measurement, from the tracks a server's `/-/stats`
                   answers (a variant of both the stable and the canary set merged)
    kept_verdict   the recorded verdict an update or a refresh keeps: the one of the
                   experiment the endpoint still runs (a promoted winner stays promoted);
                   a new experiment name drops it
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def measure(experiment: Mapping[str, Any], variants: Mapping[str, Any], directory: Path,
            now: float | None = None,
            serving: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The verdict of `experiment` (the spec's fields) between the endpoint's non-shadow
    `variants` (name -> the spec's variant), from the logs in `directory`."""
    from mlform.ml.serving.traffic import logged_feedback, logged_requests

    from .verdict import evaluate

    live = [name for name, v in variants.items() if not _shadow(v)]
    return evaluate(experiment, live, logged_requests(directory), logged_feedback(directory),
                    now=now, serving=serving)


def serving_stats(tracks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requests, errors, error rate and p99 latency per variant, over the tracks of a
    server's `/-/stats` answer (`{track: {"variants": {name: window}}}`)."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for track in tracks.values():
        for variant, window in (track.get("variants") or {}).items():
            found.setdefault(variant, []).append(window)
    return {variant: _merged(windows) for variant, windows in found.items()}


def _merged(windows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One variant's stats over the stable and canary tracks (p99: the larger)."""
    requests = sum(w["requests"] for w in windows)
    errors = sum(w["errors"] for w in windows)
    p99s = [w["p99_ms"] for w in windows if w.get("p99_ms") is not None]
    return {"requests": requests, "errors": errors,
            "error_rate": errors / requests if requests else None,
            "p99_ms": max(p99s) if p99s else None}


def kept_verdict(prior: Mapping[str, Any] | None, experiment: Any) -> dict[str, Any]:
    """`{"experiment": verdict}` when the recorded verdict in `prior` (outputs) is of
    `experiment` (the endpoint's experiment: its spec, its inputs' mapping, or None),
    else `{}`."""
    verdict = (prior or {}).get("experiment")
    if isinstance(experiment, Mapping):
        name = experiment.get("name")
    else:
        name = getattr(experiment, "name", None)
    if name and isinstance(verdict, Mapping) and verdict.get("name") == name:
        return {"experiment": verdict}
    return {}


def _shadow(variant: Any) -> bool:
    if isinstance(variant, Mapping):
        return bool(variant.get("shadow"))
    return bool(getattr(variant, "shadow", False))
