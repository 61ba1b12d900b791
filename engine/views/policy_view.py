"""The plan's policy results in words, for the text and markdown plans: each rule with
how many resources it judged and failed, then each failure with its resource's place."""

from __future__ import annotations

from typing import Any


def summary(section: dict[str, Any]) -> str:
    n = len(section["rules"])
    m, a = section["mandatory_failed"], section["advisory_failed"]
    if not m and not a:
        return f"{n} rule(s) checked, all passed"
    return f"{n} rule(s) checked: {m} mandatory and {a} advisory failure(s)"


def _where(v: dict[str, Any]) -> str:
    return f" ({v['location']})" if v.get("location") else ""


def text_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    lines = [f"Policies: {summary(section)}"]
    for r in section["rules"]:
        mark = "FAIL" if r["failed"] else "pass"
        lines.append(f"  {mark} {r['name']} ({r['severity']}): {r['checked'] - r['failed']}/"
                     f"{r['checked']} resource(s) pass")
    for v in section["violations"]:
        word = "error" if v["severity"] == "mandatory" else "warning"
        lines.append(f"  {word}: {v['rule']}: {v['type']}.{v['resource']}{_where(v)}: "
                     f"{v['message']}")
    return lines


def markdown_lines(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    icon = "❌" if section["mandatory_failed"] else ("⚠️" if section["advisory_failed"]
                                                      else "✅")
    out = [f"**Policies {icon} {summary(section)}**", "",
           "| Rule | Severity | Result |", "|---|---|---|"]
    for r in section["rules"]:
        result = f"{r['failed']} of {r['checked']} fail" if r["failed"] \
            else f"{r['checked']} pass"
        out.append(f"| `{r['name']}` | {r['severity']} | {result} |")
    out.append("")
    for v in section["violations"]:
        word = "**mandatory**" if v["severity"] == "mandatory" else "advisory"
        out.append(f"- {word} `{v['rule']}`: `{v['resource']}`{_where(v)}: "
                   f"{v['message']}")
    if section["violations"]:
        out.append("")
    return out
