"""Checking a plan against its policies: every rule on every resource of its types.

Returns the plan document's `policies` section (kept in saved plans, shown in every
format) and the diagnostics the command reports: an error per failed mandatory rule,
a warning per failed advisory one. A rule that cannot be compiled or evaluated is an
error at its place in its file, and nothing is checked until it is fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, MlformError
from ..plan.model import Plan


def check(plan: Plan, stack, provider_types: dict[str, str], labels: tuple[str, ...],
          extra: tuple[Path, ...] = ()) -> tuple[dict | None, list[Diagnostic]]:
    from .sources import gather

    policies = gather(stack, extra)
    if policies is None:
        return None, []
    from .cel import compile_rules, evaluate, to_cel
    from .document import build

    compiled, problems = compile_rules(policies.rules, policies.params)
    if problems:
        raise MlformError(*problems)
    doc = build(plan, stack, provider_types, labels)
    shared = {"plan": to_cel(doc), "params": to_cel(policies.params),
              "labels": to_cel(list(labels))}
    changes = {c["name"]: c for c in doc["changes"]}
    rules, violations, errors = [], [], []
    for c in compiled:
        rule = c.rule
        checked = failed = 0
        for name, resource in doc["resources"].items():
            if rule.resource_types and resource["type"] not in rule.resource_types:
                continue
            checked += 1
            passed, why = evaluate(c, {**shared, "resource": to_cel(resource),
                                       "change": to_cel(changes[name])})
            if passed is None:
                errors.append(Diagnostic(
                    f"policy '{rule.name}' cannot be evaluated on '{name}': {why}",
                    location=rule.condition_location, address=name,
                    help="test a field that may be unset with has() first "
                         "(`has(resource.owner) && ...`), or fix the condition"))
                continue
            if not passed:
                failed += 1
                violations.append({"rule": rule.name, "severity": rule.severity,
                                   "resource": name, "type": resource["type"],
                                   "message": rule.message,
                                   "location": resource["location"]})
        rules.append({"name": rule.name, "severity": rule.severity,
                      "description": rule.description, "source": rule.source,
                      "checked": checked, "failed": failed})
    if errors:
        raise MlformError(*errors)
    mandatory = [v for v in violations if v["severity"] == "mandatory"]
    section = {"sources": policies.sources, "labels": list(labels), "rules": rules,
               "violations": violations, "mandatory_failed": len(mandatory),
               "advisory_failed": len(violations) - len(mandatory),
               "passed": not mandatory}
    return section, [diagnostic(v, stack) for v in violations]


def diagnostic(v: dict[str, Any], stack=None) -> Diagnostic:
    """A violation as the command reports it: the rule, the resource and its place."""
    loc = stack.location(("resources", v["resource"]), key=True) \
        if stack is not None and v["resource"] in stack.resources else None
    return Diagnostic(f"policy '{v['rule']}' failed for {v['type']} '{v['resource']}': "
                      f"{v['message']}", location=loc, address=v["resource"],
                      severity="error" if v["severity"] == "mandatory" else "warning")


def validate_policies(stack, extra: tuple[Path, ...] = ()) -> int:
    """`mlform validate`: gather and compile the stack's policies (no plan, so nothing is
    evaluated); raises at each mistake's place. Returns how many rules there are."""
    from .sources import gather

    policies = gather(stack, extra)
    if policies is None:
        return 0
    from .cel import compile_rules

    _, problems = compile_rules(policies.rules, policies.params)
    if problems:
        raise MlformError(*problems)
    return len(policies.rules)
