"""What `plan` adds for a reviewer besides the changes: policy results and the cost
estimate, in the plan document; and how `plan` and `apply` act on failed policies."""

from __future__ import annotations

import os
from pathlib import Path

from ..diagnostics import MlformError
from .common import err

LABELS_ENV = "MLFORM_LABELS"


def labels(flags: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Approval labels: `--label` values and the comma-separated `MLFORM_LABELS` (which a
    CI job sets from the pull request's labels)."""
    env = [x.strip() for x in os.environ.get(LABELS_ENV, "").split(",") if x.strip()]
    return tuple(dict.fromkeys([*flags, *env]))


def add_review(session, plan, doc: dict, policy_paths: tuple[Path, ...] = (),
               label_flags: tuple[str, ...] = ()) -> None:
    """Put `cost` and `policies` in the plan document (each only when there is one)."""
    from ..policy.check import check
    from ..pricing.estimate import estimate

    stack = session.stack
    provider_types = {n: p.type for n, p in stack.providers.items()}
    cost = estimate(plan, provider_types, session.providers)
    if cost is not None:
        doc["cost"] = cost
    section, _ = check(plan, stack, provider_types, labels(label_flags), policy_paths)
    if section is not None:
        doc["policies"] = section


def report(doc: dict, stack) -> bool:
    """Print each policy failure (error or warning) on stderr; whether a mandatory one
    failed."""
    from ..policy.check import diagnostic

    section = doc.get("policies")
    if not section:
        return False
    for v in section["violations"]:
        err(diagnostic(v, stack).render())
    return not section["passed"]


def refuse_failed(doc: dict, what: str) -> None:
    """`apply` refuses a plan whose mandatory policies failed."""
    section = doc.get("policies")
    if section and not section.get("passed", True):
        names = sorted({v["rule"] for v in section["violations"]
                        if v["severity"] == "mandatory"})
        raise MlformError.simple(
            f"refusing to apply {what}: mandatory policies failed: {', '.join(names)}",
            help="fix the stack (or get the approval label) and make a new plan")
