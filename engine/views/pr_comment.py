"""A saved plan as a pull-request comment and a CI job summary.

The comment opens with a hidden marker naming the stack (`<!-- mlform-plan: NAME -->`),
so a workflow finds its own earlier comment and edits it instead of posting another,
as Atlantis and Infracost do; then one summary line, the model preview, and the
markdown plan (policy and cost results included when the plan holds them), folded
when long. Pure functions of the plan document: no I/O.
"""

from __future__ import annotations

from .plan_markdown import render as render_markdown
from .preview_view import markdown_lines as preview_markdown
from .preview_view import summary as preview_summary

MARKER = "<!-- mlform-plan: {id} -->"
FOLD_LINES = 40
"""A plan body longer than this many lines is folded under a <details>."""
COMMENT_LIMIT = 65_000
"""GitHub refuses comments over 65,536 characters; a longer body is cut with a note."""


def marker(doc: dict, comment_id: str | None = None) -> str:
    return MARKER.format(id=comment_id or doc["stack"])


def summary_line(doc: dict) -> str:
    """"Plan: 1 to add, 2 to change, 0 to destroy." and what else a reviewer must see first."""
    s = doc["summary"]
    changes = [c for c in doc["changes"] if c["action"] != "no-op"]
    if not changes and not doc.get("output_changes"):
        head = "No changes."
    else:
        moves = f", {s['move']} to move" if s.get("move") else ""
        head = (f"Plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to "
                f"destroy{moves}.")
    extra = [text for text in (preview_summary(doc), _policies_summary(doc),
                               _cost_summary(doc)) if text]
    return f"**{head}**" + "".join(f" · {text}" for text in extra)


def render_comment(doc: dict, plan_file: str = "plan.json", comment_id: str | None = None,
                   digest: str = "") -> str:
    """The pull-request comment body for the plan document `doc` saved as `plan_file`."""
    out = [marker(doc, comment_id), f"#### mlform plan for `{doc['stack']}`", "",
           summary_line(doc), ""]
    out += preview_markdown(doc)
    lines = _plan_body(doc)
    footer = _footer(doc, plan_file, digest)
    head = list(out)
    if len(lines) > FOLD_LINES:
        out += [f"<details><summary>The full plan ({len(lines)} lines)</summary>", ""]
        out += lines + ["", "</details>", ""]
    else:
        out += lines + [""]
    text = "\n".join(out + footer) + "\n"
    if len(text) <= COMMENT_LIMIT:
        return text
    # Too long for a comment: the summary line and preview stay, the plan body points on.
    short = head + [f"> ✂️ The full plan ({len(lines)} lines) is too long for a comment: read it "
              "in the job summary or the saved plan file.", ""]
    return "\n".join(short + footer) + "\n"


def render_summary(doc: dict, plan_file: str = "plan.json", digest: str = "") -> str:
    """The job summary ($GITHUB_STEP_SUMMARY, or any CI's report page): the same content,
    nothing folded and no marker (a summary is written once per job)."""
    out = [f"### mlform plan for `{doc['stack']}`", "", summary_line(doc), ""]
    out += preview_markdown(doc)
    lines = _plan_body(doc)
    return "\n".join(out + lines + [""] + _footer(doc, plan_file, digest)) + "\n"


def _plan_body(doc: dict) -> list[str]:
    """The markdown plan without its heading and counts line (both are above it) and
    without the preview (shown first)."""
    body = render_markdown({k: v for k, v in doc.items() if k != "preview"})
    lines = [line for line in body.rstrip("\n").splitlines()
             if not line.startswith(("### mlform plan for", "**Plan: "))]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return lines


def _footer(doc: dict, plan_file: str, digest: str) -> list[str]:
    where = f"state serial {doc['serial']}"
    if digest:
        where += f", plan {digest[:19]}"
    return [f"<sub>Planned against {where}. On merge, CI applies exactly this plan "
            f"(`mlform apply {plan_file}`); a plan made against an older state is refused "
            "and must be made again.</sub>"]


def _policies_summary(doc: dict) -> str:
    """The policy results in a few words, when the plan holds them (docs/policies.md)."""
    from .policy_view import summary

    return f"policies: {summary(doc['policies'])}" if doc.get("policies") else ""


def _cost_summary(doc: dict) -> str:
    """The cost estimate's totals, when the plan holds one (docs/cost.md)."""
    from .cost_view import totals

    return f"cost: {totals(doc['cost'])}" if doc.get("cost") else ""
