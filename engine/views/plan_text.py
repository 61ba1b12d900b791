"""The human plan, rendered from the plan document (the same one `--format json` prints)."""

from __future__ import annotations

import json
from typing import Any

from ..values import display

COLORS = {"create": "green", "update": "yellow", "delete": "red",
          "delete-then-create": "magenta", "create-then-delete": "magenta", "no-op": "dim", "move": "cyan"}
SYMBOLS = {"create": "+", "update": "~", "delete": "-", "delete-then-create": "-/+",
           "create-then-delete": "+/-", "no-op": " ", "move": "->"}
VERBS = {"create": "will be created", "update": "will be updated in place",
         "delete": "will be destroyed", "delete-then-create": "must be replaced",
         "create-then-delete": "must be replaced (new one first)", "move": "will be moved"}


def fmt_value(value: Any, width: int = 72) -> str:
    value = display(value)
    text = value if isinstance(value, str) and value.startswith("(") and value.endswith(")") \
        else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def render(doc: dict, color: bool = True, drift_lines: list[str] | None = None) -> str:
    def c(text: str, style: str) -> str:
        return f"[{style}]{_esc(text)}[/{style}]" if color else text

    lines: list[str] = []
    if drift_lines:
        lines.append(c("Changes outside mlform since the last apply:", "bold"))
        lines.extend("  " + _esc(line) if color else "  " + line for line in drift_lines)
        lines.append("")
    if doc.get("notes"):
        lines.append(c("Notes:", "bold"))
        lines.extend(f"  - {_e(note, color)}" for note in doc["notes"])
        lines.append("")
    changes = [ch for ch in doc["changes"] if ch["action"] != "no-op"]
    outputs = doc.get("output_changes", [])
    if not changes and not outputs:
        lines.append(c("No changes.", "bold green") + " The stack matches the spec.")
        return "\n".join(lines + _review(doc, color))
    if changes:
        lines.append("mlform will perform these actions:")
        lines.append("")
    for ch in changes:
        action = ch["action"]
        style = COLORS[action]
        head = f"{SYMBOLS[action]} {ch['type']}.{ch['name']}"
        lines.append(c(head, f"bold {style}") + f" {VERBS[action]}"
                     + (f" from '{ch['moved_from']}' to '{ch['provider']}'"
                        if action == "move" else ""))
        for reason in ch["reasons"]:
            lines.append(c(f"    # {reason}", "dim") if color else f"    # {reason}")
        for attr in ch["attributes"]:
            mark = c("  # forces replacement", "red") if attr["forces_replacement"] else ""
            before, after = attr["before"], attr["after"]
            if before is None:
                lines.append(f"    {c('+', 'green')} {attr['path']} = {_e(fmt_value(after), color)}{mark}")
            elif after is None:
                lines.append(f"    {c('-', 'red')} {attr['path']} = {_e(fmt_value(before), color)}{mark}")
            else:
                lines.append(f"    {c('~', 'yellow')} {attr['path']}: {_e(fmt_value(before, 36), color)} "
                             f"-> {_e(fmt_value(after, 36), color)}{mark}")
        if action == "create" and not ch["attributes"]:
            for key, value in sorted((ch.get("after") or {}).items()):
                lines.append(f"    {c('+', 'green')} {key} = {_e(fmt_value(value), color)}")
        lines.append("")
    if outputs:
        lines.append("Changes to outputs:")
        for o in outputs:
            if o["before"] is None:
                lines.append(f"  {c('+', 'green')} {o['name']} = {_e(fmt_value(o['after']), color)}")
            elif o["after"] is None:
                lines.append(f"  {c('-', 'red')} {o['name']} = {_e(fmt_value(o['before']), color)}")
            else:
                lines.append(f"  {c('~', 'yellow')} {o['name']}: "
                             f"{_e(fmt_value(o['before'], 36), color)} -> "
                             f"{_e(fmt_value(o['after'], 36), color)}")
        lines.append("")
    from .migration_view import text_lines as migration_lines
    from .preview_view import text_lines as preview_lines

    lines.extend(_e(line, color) for line in migration_lines(doc))

    lines.extend(_e(line, color) for line in preview_lines(doc))
    s = doc["summary"]
    moves = f", {s['move']} to move" if s.get("move") else ""
    lines.append(c("Plan:", "bold") + f" {s['add']} to add, {s['change']} to change, "
                 f"{s['destroy']} to destroy{moves}.")
    return "\n".join(lines + _review(doc, color))


def _review(doc: dict, color: bool) -> list[str]:
    from .review_view import text_lines

    return [_e(line, color) for line in text_lines(doc)]


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def _e(text: str, color: bool) -> str:
    return _esc(text) if color else text
