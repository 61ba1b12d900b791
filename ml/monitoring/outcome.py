"""What a provider records and raises from one evaluation (see `evaluate`): the
monitor's `last_evaluation` output, the breach `mlform watch` opens an incident from,
and the event line it prints. The same on every provider, so a stack's monitors read
alike wherever they run.

    last_evaluation  {"time", "t", "verdict", "breaches", "drifted_features", "share",
                      "performance", "batch_output", "evaluation", "report"}
                     (evaluation and report: where the provider stored the evaluation
                     json and its html page)
    breach           {"kind": verdict, "breaches", "features", "values", "thresholds"},
                     or None when nothing failed
"""

from __future__ import annotations

from typing import Any


def last_evaluation(evaluation: dict[str, Any], stored: str, report: str) -> dict[str, Any]:
    """The monitor's `last_evaluation` output: the verdict and what decided it."""
    drift = evaluation["drift"] or {}
    return {"time": evaluation["time"], "t": evaluation["t"],
            "verdict": evaluation["verdict"], "breaches": evaluation["breaches"],
            "drifted_features": drift.get("drifted_features", []),
            "share": drift.get("share"), "performance": evaluation["performance"],
            "batch_output": evaluation["batch_output"],
            "evaluation": str(stored), "report": str(report)}


def breach(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """The breach to raise, with the measured values and thresholds of what failed."""
    if not evaluation["breaches"]:
        return None
    drifted = [f for f in evaluation["features"] if f["drifted"]]
    values = {f["name"]: f["value"] for f in drifted}
    thresholds = {f["name"]: f["threshold"] for f in drifted}
    performance = evaluation["performance"]
    if "performance" in evaluation["breaches"]:
        values[performance["metric"]] = performance["value"]
        thresholds[performance["metric"]] = {"min": performance["min"], "max": performance["max"]}
    return {"kind": evaluation["verdict"], "breaches": evaluation["breaches"],
            "features": [f["name"] for f in drifted], "values": values,
            "thresholds": thresholds}


def event(name: str, evaluation: dict[str, Any], report: str) -> str:
    """The line `mlform watch` prints for an evaluation."""
    on = f" on {evaluation['batch_output']}" if evaluation["batch_output"] else ""
    return (f"monitor {name}{on}: {evaluation['verdict'].replace('_', ' ')}: "
            f"{evaluation['summary']} (report {report})")
