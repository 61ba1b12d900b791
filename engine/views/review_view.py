"""What a plan shows a reviewer after its changes: the policy results, then the cost
estimate (each only when the plan document has it)."""

from __future__ import annotations

from . import cost_view, policy_view


def text_lines(doc: dict) -> list[str]:
    extra = policy_view.text_lines(doc.get("policies")) + cost_view.text_lines(doc.get("cost"))
    return [""] + extra if extra else []


def markdown_lines(doc: dict) -> list[str]:
    return policy_view.markdown_lines(doc.get("policies")) + \
        cost_view.markdown_lines(doc.get("cost"))
