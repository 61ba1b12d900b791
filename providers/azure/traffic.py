"""Traffic: portable variant weights as a managed online endpoint's `traffic` (whole percents
per deployment, summing to 100), and the traffic at each step of a rollout."""

from __future__ import annotations

from collections.abc import Mapping


def percents(weights: Mapping[str, float]) -> dict[str, int]:
    """`weights` as whole percents summing to 100 (largest remainder), or {} when every
    weight is zero (an endpoint that takes no traffic)."""
    total = float(sum(w for w in weights.values() if w > 0))
    if total <= 0:
        return {}
    exact = {k: 100.0 * max(w, 0) / total for k, w in weights.items()}
    split = {k: int(v) for k, v in exact.items()}
    short = 100 - sum(split.values())
    for key in sorted(exact, key=lambda k: (split[k] - exact[k], k))[:short]:
        split[key] += 1
    return split


def blend(stable: Mapping[str, int], target: Mapping[str, int], percent: int) -> dict[str, int]:
    """The split with `percent` of the requests on `target`'s distribution and the rest on
    `stable`'s: a rollout step."""
    mixed: dict[str, float] = {}
    for key, share in stable.items():
        mixed[key] = mixed.get(key, 0.0) + share * (100 - percent) / 100.0
    for key, share in target.items():
        mixed[key] = mixed.get(key, 0.0) + share * percent / 100.0
    return {k: v for k, v in percents(mixed).items() if v > 0}
