"""The model card as one self-contained HTML page (`card.html`, inline CSS, no scripts or
external assets), rendered from the same data as `card.json` and `card.md`."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;
color:#1f2328}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.muted{color:#656d76}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600}dd{margin:0}code{background:#f6f8fa;padding:0 .2rem}
"""


def render_html(card: dict[str, Any]) -> str:
    title = f"Model card: {card['model']} version {card['version']}"
    parts = [f"<h1>{escape(title)}</h1>",
             f"<p class=muted>{escape(card.get('description') or '')}</p>",
             _overview(card), _data(card), _training(card), _metrics(card), _gates(card),
             _decision(card), _importance(card), _fairness(card)]
    return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(p for p in parts if p) + "\n</body></html>\n")


def _overview(card: dict[str, Any]) -> str:
    rows = [("Owner", card.get("owner") or "not stated"),
            ("Intended use", card.get("intended_use") or "not stated"),
            ("Registered", card["created"]),
            ("Task", f"{card['task']}, predicting {card.get('target')}")]
    if card.get("classes"):
        rows.append(("Classes", ", ".join(map(str, card["classes"]))))
    run = card.get("run") or {}
    rows.append(("Training run", f"{run.get('run_id')} ({run.get('artifact')})"))
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>"
                            for k, v in rows) + "</dl>"


def _data(card: dict[str, Any]) -> str:
    data = card.get("data") or {}
    out = ["<h2>Data</h2>", f"<p>{escape(str(data.get('uri')))} (version "
           f"<code>{escape(str(data.get('version')))}</code>)</p>"]
    profile = data.get("profile")
    if not profile:
        return "\n".join([*out, "<p class=muted>No profile of the data was recorded.</p>"])
    out.append(f"<p>{profile['rows']} rows</p>")
    rows = []
    for name, col in profile["columns"].items():
        summary = (f"mean {col['mean']:.4g}, std {col['std']:.4g}"
                   if col["kind"] == "numeric" and col.get("mean") is not None
                   else f"{col.get('unique', 0)} distinct values")
        rows.append([name, col["kind"], col["nulls"], summary])
    return "\n".join([*out, _table(["column", "kind", "nulls", "summary"], rows)])


def _training(card: dict[str, Any]) -> str:
    rows = [[k, v] for k, v in card["training"].items() if v is not None]
    rows.append(["features", ", ".join(card["features"])])
    return "<h2>Training</h2>\n" + _table(["parameter", "value"], rows)


def _metrics(card: dict[str, Any]) -> str:
    rows = [[k, v] for k, v in card["metrics"].items() if isinstance(v, int | float)]
    return "<h2>Held-out metrics</h2>\n" + _table(["metric", "value"], rows)


def _gates(card: dict[str, Any]) -> str:
    if not card["gates"]:
        return "<h2>Gates</h2>\n<p class=muted>No gates were declared.</p>"
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in ("gate", "kind", "measured", "result",
                                                        "detail")) + "</tr>"
    body = []
    for g in card["gates"]:
        verdict = "<span class=pass>pass</span>" if g["passed"] else \
            "<span class=fail>FAIL</span>"
        body.append(f"<tr><td>{escape(g['gate'])}</td><td>{escape(g['kind'])}</td>"
                    f"<td class=num>{_cell(g['measured'])}</td><td>{verdict}</td>"
                    f"<td>{escape(g.get('detail') or '')}</td></tr>")
    return "<h2>Gates</h2>\n<table>" + head + "".join(body) + "</table>"


def _decision(card: dict[str, Any]) -> str:
    rows = [[d["gate"], d["threshold"], d["costs"]["false_positive"],
             d["costs"]["false_negative"], d["cost_per_row"]]
            for d in card.get("decision") or []]
    if not rows:
        return ""
    return ("<h2>Decision threshold</h2>\n<p>Predict the positive class when its probability "
            "is at least the threshold of least expected cost on the held-out rows.</p>\n"
            + _table(["gate", "threshold", "false positive cost", "false negative cost",
                      "cost per row"], rows))


def _importance(card: dict[str, Any]) -> str:
    importance = card.get("importance")
    if not importance:
        return ""
    if not importance.get("features"):
        return ("<h2>Feature importance</h2>\n<p class=muted>Not measured: "
                f"{escape(importance.get('note') or '')}</p>")
    rows = [[f["feature"], f["importance"], f["std"]] for f in importance["features"]]
    return ("<h2>Feature importance</h2>\n"
            f"<p>Permutation importance on {importance['rows']} held-out rows: the drop of "
            f"{escape(importance['metric'])} when the feature's values are shuffled.</p>\n"
            + _table(["feature", "importance", "std"], rows))


def _fairness(card: dict[str, Any]) -> str:
    out = []
    for gate, groups in (card.get("fairness") or {}).items():
        rows = [[group, int(m["count"]), m["selection_rate"], m["accuracy"]]
                for group, m in groups.items()]
        out += [f"<h2>Fairness by group: {escape(gate)}</h2>",
                _table(["group", "count", "selection rate", "accuracy"], rows)]
    return "\n".join(out)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(
        f"<td class=num>{_cell(v)}</td>" if isinstance(v, int | float) and
        not isinstance(v, bool) else f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in rows)
    return f"<table>{head}{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return escape(", ".join(f"{k}={v}" for k, v in value.items()))
    return escape(str(value))
