"""The model preview of a plan (`plan --preview`), in words and in markdown.

Renders the document's `preview` section (engine/preview/): per model the plan
would retrain, each held-out metric of the champion against the candidate trained
on a scratch copy, and each gate's would-pass or would-fail.
"""

from __future__ import annotations

from typing import Any


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _delta(before: Any, after: Any) -> str:
    if before is None or after is None:
        return ""
    return f"{after - before:+.3f}"


def _verdict(gate: dict) -> str:
    word = "would pass" if gate["passed"] else "would fail"
    if gate.get("measured") is not None:
        return f"{word} ({gate['measured']:.3f})"
    return f"{word} ({gate.get('detail') or 'not measured'})"


def _champion(gate: dict) -> str:
    """How the champion fared on the same gate when it was registered."""
    passed = gate.get("passed_before")
    if passed is None:
        return "–"
    return ("✅ passed" if passed else "❌ failed") + \
        (f" ({gate['before']:.3f})" if gate.get("before") is not None else "")


def summary(doc: dict) -> str:
    """A few words for a summary line: "preview: 1 gate would fail"; "" without a preview."""
    preview = doc.get("preview")
    if not preview:
        return ""
    models = preview.get("models", [])
    failing = sum(1 for m in models for g in m.get("gates", []) if not g["passed"])
    errors = sum(1 for m in models if m.get("error"))
    if errors:
        return f"preview: {errors} model(s) could not be previewed"
    if not models:
        return "preview: nothing to retrain"
    if failing:
        return f"preview: {failing} gate(s) would fail"
    return "preview: every gate would pass"


def text_lines(doc: dict) -> list[str]:
    preview = doc.get("preview")
    if not preview:
        return []
    lines = [f"Model preview ({preview['basis']}):"]
    if not preview.get("models"):
        lines.append("  nothing in this plan retrains a model")
    for m in preview.get("models", []):
        lines.append(f"  {m['model']} (retrained by {m['training_job']}), "
                     f"judged on {m.get('evaluated_on', 'nothing')}:")
        if m.get("error"):
            lines.append(f"    could not preview: {m['error']}")
            continue
        for metric in m["metrics"]:
            lines.append(f"    {metric['metric']} {_num(metric['before'])} -> "
                         f"{_num(metric['after'])}"
                         + (f" ({_delta(metric['before'], metric['after'])})"
                            if metric["before"] is not None else ""))
        for gate in m["gates"]:
            lines.append(f"    gate {gate['gate']} {_verdict(gate)}")
        if m.get("sampled"):
            lines.append(f"    (trained on a sample: {m['sampled']})")
    lines.append("")
    return lines


def markdown_lines(doc: dict) -> list[str]:
    preview = doc.get("preview")
    if not preview:
        return []
    out = ["##### Model preview", "", f"_{preview['basis'][0].upper()}{preview['basis'][1:]}._",
           ""]
    if not preview.get("models"):
        return out + ["Nothing in this plan retrains a model.", ""]
    for m in preview["models"]:
        out.append(f"**`{m['model']}`** (retrained by `{m['training_job']}`), judged on "
                   f"{m.get('evaluated_on', 'nothing')}"
                   + (f"; trained on a sample: {m['sampled']}" if m.get("sampled") else "")
                   + ":")
        out.append("")
        if m.get("error"):
            out += [f"> ⚠️ could not preview: {m['error']}", ""]
            continue
        out += ["| Metric | Champion | Candidate | Δ |", "|---|---|---|---|"]
        for metric in m["metrics"]:
            out.append(f"| {metric['metric']} | {_num(metric['before'])} | "
                       f"{_num(metric['after'])} | {_delta(metric['before'], metric['after'])} |")
        out.append("")
        if m["gates"]:
            out += ["| Gate | Champion | Candidate |", "|---|---|---|"]
            for gate in m["gates"]:
                mark = "✅" if gate["passed"] else "❌"
                out.append(f"| `{gate['gate']}` | {_champion(gate)} | "
                           f"{mark} {_verdict(gate)} |")
            out.append("")
    return out
