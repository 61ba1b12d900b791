"""Renders a stored evaluation (see `evaluate`) for people: text, json or html.

The html page stands alone: inline CSS and one inline SVG histogram per feature
(reference against current), no scripts and nothing fetched from elsewhere, so it
can be mailed, archived or opened offline.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .stats import DRIFT_WHEN

FORMATS = ("text", "json", "html")
COLUMNS = ("feature", "kind", "method", "value", "drift when", "verdict")


def render(evaluation: dict[str, Any], fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(evaluation, indent=2, sort_keys=True)
    if fmt == "html":
        return html(evaluation)
    if fmt == "text":
        return text(evaluation)
    raise ValueError(f"unknown report format '{fmt}': use one of {', '.join(FORMATS)}")


def text(evaluation: dict[str, Any]) -> str:
    lines = [f"monitor {evaluation['monitor']} at {evaluation['time']}: "
             f"{evaluation['verdict'].replace('_', ' ')}",
             f"current rows {evaluation['rows']['current']}{_of_batch(evaluation)}, "
             f"reference rows {evaluation['rows']['reference']}", ""]
    rows = [_row(entry) for entry in _entries(evaluation)]
    if rows:
        widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        for row in [COLUMNS, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                         .rstrip())
        lines.append("")
    performance = evaluation.get("performance")
    if performance:
        lines.append("performance: " + _performance_line(performance))
    lines.append(evaluation["summary"])
    return "\n".join(lines) + "\n"


def html(evaluation: dict[str, Any]) -> str:
    title = f"monitor {evaluation['monitor']}: {evaluation['verdict'].replace('_', ' ')}"
    table = "".join(
        "<tr{}>{}</tr>".format(" class='bad'" if entry["drifted"] else "",
                               "".join(f"<td>{escape(c)}</td>" for c in _row(entry)))
        for entry in _entries(evaluation))
    charts = "".join(_chart(entry) for entry in _entries(evaluation) if entry.get("histogram"))
    performance = evaluation.get("performance")
    performance_html = ("<p{}>performance: {}</p>".format(
        " class='bad'" if performance["passed"] is False else "",
        escape(_performance_line(performance))) if performance else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; }} .verdict {{ padding: .1em .5em; border-radius: 3px;
  background: {'#c62828' if evaluation['breaches'] else '#2e7d32'}; color: #fff; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .3em .8em; text-align: left; }}
tr.bad td, p.bad {{ color: #c62828; font-weight: 600; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1.5em; }}
figure {{ margin: 0; }} figcaption {{ font-weight: 600; }}
.legend span {{ display: inline-block; width: .8em; height: .8em; margin: 0 .3em 0 1em; }}
</style></head><body>
<h1>monitor {escape(evaluation['monitor'])}
 <span class="verdict">{escape(evaluation['verdict'].replace('_', ' '))}</span></h1>
<p>{escape(evaluation['time'])}: current rows {evaluation['rows']['current']}\
{escape(_of_batch(evaluation))},
 reference rows {evaluation['rows']['reference']} ({escape(str(evaluation['reference']))})</p>
<p>{escape(evaluation['summary'])}</p>
{performance_html}
<table><tr>{''.join(f'<th>{escape(c)}</th>' for c in COLUMNS)}</tr>{table}</table>
<p class="legend"><span style="background:#9e9e9e"></span>reference
<span style="background:#1e88e5"></span>current</p>
<div class="charts">{charts}</div>
</body></html>
"""


def _of_batch(evaluation: dict[str, Any]) -> str:
    output = evaluation.get("batch_output")
    return f" (of batch output {output})" if output else ""


def _entries(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    entries = list(evaluation.get("features") or [])
    if evaluation.get("output_drift"):
        output = evaluation["output_drift"]
        entries.append({**output, "name": f"{output.get('name') or 'prediction'} (output)"})
    return entries


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    if not entry["method"]:
        return (entry["name"], entry["kind"], "-", "-", "-", entry["note"] or "not compared")
    return (entry["name"], entry["kind"], entry["method"], f"{entry['value']:.4g}",
            f"{DRIFT_WHEN[entry['method']]} {entry['threshold']:g}",
            "drift" if entry["drifted"] else "ok")


def _performance_line(performance: dict[str, Any]) -> str:
    bounds = ", ".join(f"{k} {performance[k]}" for k in ("min", "max")
                       if performance[k] is not None)
    if performance["value"] is None:
        return (f"{performance['metric']} not scored: {performance['note']} "
                f"({performance['rows']} labelled instance(s); {bounds})")
    verdict = "ok" if performance["passed"] else "breached"
    return (f"{performance['metric']} {performance['value']:.4f} ({bounds}) over "
            f"{performance['rows']} labelled instance(s): {verdict}")


def _chart(entry: dict[str, Any], width: int = 360, height: int = 140) -> str:
    histogram = entry["histogram"]
    labels, ref, cur = histogram["labels"], histogram["reference"], histogram["current"]
    top = max([*ref, *cur, 1e-12])
    slot = width / len(labels)
    bars = []
    for i, (label, r, c) in enumerate(zip(labels, ref, cur, strict=True)):
        x = i * slot
        for offset, share, colour in ((0.1, r, "#9e9e9e"), (0.5, c, "#1e88e5")):
            h = share / top * (height - 20)
            bars.append(f"<rect x='{x + offset * slot:.1f}' y='{height - 20 - h:.1f}' "
                        f"width='{0.4 * slot:.1f}' height='{h:.1f}' fill='{colour}'>"
                        f"<title>{escape(label)}: reference {r:.3f}, current {c:.3f}</title>"
                        "</rect>")
    axis = (f"<text x='0' y='{height - 5}' font-size='10'>{escape(labels[0])}</text>"
            f"<text x='{width}' y='{height - 5}' font-size='10' text-anchor='end'>"
            f"{escape(labels[-1])}</text>")
    verdict = "drift" if entry["drifted"] else "ok"
    return (f"<figure><figcaption>{escape(entry['name'])}: {verdict}</figcaption>"
            f"<svg width='{width}' height='{height}' "
            f"role='img' aria-label='{escape(entry['name'])} histogram'>{''.join(bars)}{axis}"
            "</svg></figure>")
