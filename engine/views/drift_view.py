"""The drift report as text, markdown and a self-contained HTML page."""

from __future__ import annotations

import html
import json

from ..refresh import KIND_TEXT


def _value(v) -> str:
    if v is None:
        return "(default)"  # state records only the inputs written in the spec
    return v if isinstance(v, str) else json.dumps(v, default=str)


def text(doc: dict) -> str:
    lines = [f"Drift report for stack '{doc['stack']}' at {doc['checked_at']} "
             f"({doc['resources_checked']} resources checked)", ""]
    if not doc["findings"]:
        lines.append("No drift: live infrastructure matches the state and the spec.")
    for f in doc["findings"]:
        lines.append(f"{f['type']}.{f['resource']}: {KIND_TEXT.get(f['kind'], f['kind'])}")
        if f["detail"]:
            lines.append(f"    {f['detail']}")
        for a in f["attributes"]:
            lines.append(f"    {a['path']}: {_value(a['state'])} -> {_value(a['live'])}")
    for e in doc["errors"]:
        lines.append(f"warning: {e}")
    for i in doc.get("incidents", []):
        lines.append(f"incident {i['id']} ({i['kind']}, {i['status']}): {i['title']}")
    if doc["findings"]:
        lines += ["", f"{len(doc['findings'])} finding(s). 'mlform apply' restores what the "
                      "spec says; 'mlform refresh' accepts live values into state instead."]
    return "\n".join(lines) + "\n"


def markdown(doc: dict) -> str:
    out = [f"### mlform drift report: `{doc['stack']}`", "",
           f"Checked {doc['resources_checked']} resources at {doc['checked_at']}.", ""]
    if not doc["findings"]:
        out.append("✅ **No drift.** Live infrastructure matches the state and the spec.")
        return "\n".join(out + _markdown_incidents(doc)) + "\n"
    out.append(f"⚠️ **{len(doc['findings'])} finding(s).**")
    out += ["", "| Resource | Type | Finding | Attribute | State | Live |",
            "|---|---|---|---|---|---|"]
    for f in doc["findings"]:
        kind = KIND_TEXT.get(f["kind"], f["kind"])
        if not f["attributes"]:
            out.append(f"| `{f['resource']}` | {f['type']} | {kind} | | | |")
        for a in f["attributes"]:
            out.append(f"| `{f['resource']}` | {f['type']} | {kind} | `{a['path']}` | "
                       f"`{_value(a['state'])}` | `{_value(a['live'])}` |")
    return "\n".join(out + _markdown_incidents(doc)) + "\n"


def _markdown_incidents(doc: dict) -> list[str]:
    """The unresolved incidents as a table, whether or not anything drifted: a breach or
    a rollback matters as much in a clean report."""
    incidents = doc.get("incidents") or []
    if not incidents:
        return []
    out = ["", f"🚨 **{len(incidents)} unresolved incident(s).**", "",
           "| Incident | Kind | Status | Resources | Title | Opened |", "|---|---|---|---|---|---|"]
    for i in incidents:
        resources = ", ".join(f"`{r}`" for r in i.get("resources", []))
        title = i["title"].replace("|", "\\|")
        out.append(f"| `{i['id']}` | {i['kind']} | {i['status']} | {resources} | {title} | "
                   f"{i.get('opened', '')} |")
    return out


def html_page(doc: dict) -> str:
    e = html.escape
    rows = []
    for f in doc["findings"]:
        kind = KIND_TEXT.get(f["kind"], f["kind"])
        attrs = "".join(f"<tr><td><code>{e(a['path'])}</code></td><td>{e(_value(a['state']))}"
                        f"</td><td>{e(_value(a['live']))}</td></tr>" for a in f["attributes"])
        table = (f"<table class='attrs'><tr><th>attribute</th><th>state</th><th>live</th></tr>"
                 f"{attrs}</table>") if attrs else ""
        rows.append(f"<section class='finding {e(f['kind'])}'><h2>{e(f['type'])}."
                    f"{e(f['resource'])} <span class='kind'>{e(kind)}</span></h2>"
                    f"<p>{e(f['detail'])}</p>{table}</section>")
    body = "".join(rows) or "<p class='ok'>No drift: live infrastructure matches the state " \
                           "and the spec.</p>"
    body += _html_incidents(doc)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>mlform drift report: {e(doc['stack'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.05rem; margin: 0 0 .4rem; }}
.finding {{ border-left: 4px solid #d97706; padding: .5rem 1rem; margin: 1rem 0;
  background: #fffbeb; }}
.finding.deleted_outside, .finding.orphan {{ border-color: #dc2626; background: #fef2f2; }}
.finding.spec_not_applied {{ border-color: #2563eb; background: #eff6ff; }}
.kind {{ font-weight: normal; color: #555; font-size: .9rem; }}
table.attrs {{ border-collapse: collapse; }} .attrs td, .attrs th {{ padding: .2rem .6rem;
  border-bottom: 1px solid #ddd; text-align: left; }}
.ok {{ color: #166534; font-weight: bold; }}
.incident {{ border-left: 4px solid #dc2626; padding: .5rem 1rem; margin: 1rem 0;
  background: #fef2f2; }}
</style></head><body>
<h1>Drift report for <code>{e(doc['stack'])}</code></h1>
<p>Checked {doc['resources_checked']} resources at {e(doc['checked_at'])}:
{len(doc['findings'])} finding(s).</p>
{body}
</body></html>
"""


def _html_incidents(doc: dict) -> str:
    e = html.escape
    incidents = doc.get("incidents") or []
    if not incidents:
        return ""
    items = "".join(
        f"<section class='incident {e(i['kind'])}'><h2><code>{e(i['id'])}</code> "
        f"{e(i['title'])} <span class='kind'>{e(i['kind'])}, {e(i['status'])}</span></h2>"
        f"<p>resources: {e(', '.join(i.get('resources', [])))}; opened "
        f"{e(str(i.get('opened', '')))}</p></section>" for i in incidents)
    return f"<h2>{len(incidents)} unresolved incident(s)</h2>{items}"
