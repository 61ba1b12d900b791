"""The plan as a pull-request comment: summary counts, a table, details folded."""

from __future__ import annotations

from .plan_text import SYMBOLS, fmt_value

EMOJI = {"create": "🟢 create", "update": "🟡 update", "delete": "🔴 delete",
         "delete-then-create": "🟣 replace", "create-then-delete": "🟣 replace",
         "move": "🔵 move"}


def render(doc: dict) -> str:
    changes = [c for c in doc["changes"] if c["action"] != "no-op"]
    s = doc["summary"]
    out = [f"### mlform plan for `{doc['stack']}`", ""]
    if doc.get("drift"):
        out.append(f"> ⚠️ {len(doc['drift'])} resource(s) changed outside mlform since the "
                   "last apply.")
        out.append("")
    for note in doc.get("notes", ()):
        out.append(f"> ℹ️ {note}")
        out.append("")
    outputs = doc.get("output_changes", [])
    if not changes and not outputs:
        out.append("**No changes.** The stack matches the spec.")
        return "\n".join(out + _review(doc)) + "\n"
    moves = f", {s['move']} to move" if s.get("move") else ""
    out.append(f"**Plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to "
               f"destroy{moves}.**")
    out.append("")
    out.append("| | Resource | Type | Action | Why |")
    out.append("|---|---|---|---|---|")
    for c in changes:
        why = "; ".join(c["reasons"]).replace("|", "\\|")
        action = EMOJI[c["action"]] + (f" `{c['moved_from']}` -> `{c['provider']}`"
                                       if c["action"] == "move" else "")
        out.append(f"| `{SYMBOLS[c['action']]}` | `{c['name']}` | {c['type']} | "
                   f"{action} | {why} |")
    out.append("")
    from .migration_view import markdown_lines as migration_lines

    out.extend(migration_lines(doc))
    if outputs:
        out.append("Outputs: " + ", ".join(f"`{o['name']}`" for o in outputs) + " change.")
        out.append("")
    for c in changes:
        if not c["attributes"]:
            continue
        out.append(f"<details><summary><code>{c['name']}</code>: "
                   f"{len(c['attributes'])} attribute change(s)</summary>")
        out.append("")
        out.append("```diff")
        for a in c["attributes"]:
            flag = "  # forces replacement" if a["forces_replacement"] else ""
            if a["before"] is not None:
                out.append(f"- {a['path']}: {fmt_value(a['before'])}")
            if a["after"] is not None:
                out.append(f"+ {a['path']}: {fmt_value(a['after'])}{flag}")
        out.append("```")
        out.append("")
        out.append("</details>")
        out.append("")
    from .preview_view import markdown_lines as preview_lines

    out.extend(preview_lines(doc))
    return "\n".join(out + _review(doc)) + "\n"


def _review(doc: dict) -> list[str]:
    from .review_view import markdown_lines

    lines = markdown_lines(doc)
    return [""] + lines if lines else []
