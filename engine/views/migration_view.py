"""The plan's migration section in words (`doc["migration"]`, from
`mlform.engine.plan.migration`), in order: copied, created, parity, cutover, destroyed
and when, prevent_destroy; for the text and markdown plans (and so the CI comment)."""

from __future__ import annotations

import json
from typing import Any

from ..values import display


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _v(value: Any) -> str:
    value = display(value)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _parity(p: dict[str, Any]) -> str:
    rules = [f"{k} {_v(p[k])}" for k in ("min_label_agreement", "max_score_difference")
             if p.get(k) is not None]
    holdout = _v(p.get("holdout"))
    if holdout.startswith("("):
        holdout = f"parity.holdout, {holdout[1:-1]}"
    rows = (f"the held-out rows of {holdout} and recently forwarded requests"
            if p.get("holdout") else "recently forwarded requests (no held-out rows set)")
    return f"{' and '.join(rules) or 'no threshold'} on up to {p.get('sample')} rows: {rows}"


def _rollback(r: dict[str, Any]) -> str:
    keys = ("max_error_rate", "max_p99_latency_ms", "min_requests", "on_inconclusive")
    return ", ".join(f"{k} {_v(r[k])}" for k in keys if r.get(k) is not None) or "defaults"


def items(m: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(heading, lines) in the order a reviewer reads them."""
    out: list[tuple[str, list[str]]] = []
    out.append(("Copied", [f"{c['resource']}: '{c['from']}' -> '{c['to']}', {c['files']} "
                           f"file{'s' if c['files'] != 1 else ''}, {size(c['size'])}"
                           for c in m["copied"]] or ["nothing"]))
    out.append(("Created", [f"{c['resource']} on '{c['provider']}'" for c in m["created"]]
                or ["nothing"]))
    for cut in m["cutovers"]:
        head = (f"{cut['gateway']}: {', '.join(cut['from']) or '(none)'} -> {cut['to']} "
                f"(on '{cut['to_provider']}')")
        out.append(("Parity", [f"{head}: {_parity(cut['parity'])}; if it fails, no traffic "
                               "moves and an incident opens"]))
        steps = cut["steps"]
        out.append(("Cutover", [
            f"{head}: traffic steps {steps if steps is not None else '(known after apply)'}"
            f"% on the new endpoint, {_v(cut['wait'])} each",
            f"rollback on a breach of {_rollback(cut['rollback'])}: all traffic back to the "
            "old endpoint",
            f"soak {_v(cut['soak'])} at 100% before anything is destroyed"]))
    out.append(("Destroyed", [f"{d['resource']} on '{d['provider']}': {d['when']}"
                              for d in m["destroyed"]] or ["nothing"]))
    out.append(("prevent_destroy", [f"{m['prevent_destroy']}: no protected resource is "
                                    "destroyed"]))
    return out


def text_lines(doc: dict) -> list[str]:
    m = doc.get("migration")
    if not m:
        return []
    lines = ["Migration:"]
    for n, (heading, body) in enumerate(items(m), 1):
        lines.append(f"  {n}. {heading}:")
        lines.extend(f"       {line}" for line in body)
    return lines + [""]


def markdown_lines(doc: dict) -> list[str]:
    m = doc.get("migration")
    if not m:
        return []
    lines = ["**Migration**", ""]
    for n, (heading, body) in enumerate(items(m), 1):
        lines.append(f"{n}. **{heading}**")
        lines.extend(f"   - {line.replace('|', chr(92) + '|')}" for line in body)
    return lines + [""]
