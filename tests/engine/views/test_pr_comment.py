"""The pull-request comment and job summary made from a plan document (`mlform ci comment`)."""

from __future__ import annotations

import pytest
from mlform.engine.views.pr_comment import FOLD_LINES, render_comment, render_summary


def change(name: str, action: str = "update", attributes: int = 1) -> dict:
    return {"name": name, "type": "training_job", "provider": "local", "action": action,
            "reasons": [f"{name} changed"], "replace_paths": [], "dependencies": [],
            "attributes": [{"path": f"hyperparameters.p{i}", "before": i, "after": i + 1,
                            "forces_replacement": False, "reason": ""}
                           for i in range(attributes)]}


def document(changes: list[dict], **extra) -> dict:
    return {"stack": "fraud", "serial": 7, "summary": {
        "add": sum(c["action"] == "create" for c in changes),
        "change": sum(c["action"] == "update" for c in changes), "destroy": 0},
        "changes": changes, "output_changes": [], "drift": [], "notes": [], **extra}


PREVIEW = {"basis": "trained on a scratch copy with the local provider; nothing in the "
                    "stack changed", "row_cap": 100000,
           "models": [{"model": "fraud_model", "training_job": "train",
                       "evaluated_on": "the champion's held-out rows, 300 rows", "sampled": "",
                       "error": "",
                       "metrics": [{"metric": "auc", "before": 0.912, "after": 0.897}],
                       "gates": [{"gate": "auc >= 0.9", "kind": "metric", "passed": False,
                                  "measured": 0.897, "detail": "", "before": 0.912,
                                  "passed_before": True}]}]}
POLICIES = {"passed": False, "mandatory_failed": 1, "advisory_failed": 0,
            "rules": [{"name": "endpoint-rollback", "severity": "mandatory", "checked": 1,
                       "failed": 1}],
            "violations": [{"rule": "endpoint-rollback", "severity": "mandatory",
                            "resource": "api", "type": "endpoint",
                            "location": "mlform.yaml:12:3", "message": "no rollback"}]}
COST = {"currency": "USD", "total_monthly_delta": 168.19, "total_one_off": 0.0,
        "resources": [], "unpriced": [], "tables": []}


@pytest.mark.parametrize("doc, line", [
    (document([change("train")]), "**Plan: 0 to add, 1 to change, 0 to destroy.**"),
    (document([]), "**No changes.**"),
    (document([change("train")], preview=PREVIEW),
     "**Plan: 0 to add, 1 to change, 0 to destroy.** · preview: 1 gate(s) would fail"),
    (document([change("train")], policies=POLICIES, cost=COST),
     "**Plan: 0 to add, 1 to change, 0 to destroy.** · policies: 1 rule(s) checked: 1 "
     "mandatory and 0 advisory failure(s) · cost: +$168.19/month, $0.00 one-off "
     "(training runs)"),
], ids=["changes", "no-changes", "failing-preview-gate", "policies-and-cost"])
def test_the_comment_opens_with_its_marker_then_one_summary_line(doc, line):
    """A workflow finds its comment by the first line; a reviewer reads the second
    paragraph first."""
    lines = render_comment(doc).splitlines()
    assert lines[:4] == ["<!-- mlform-plan: fraud -->", "#### mlform plan for `fraud`", "",
                         line]


def test_an_id_names_the_comment_when_one_pull_request_plans_several_stacks():
    assert render_comment(document([]), comment_id="fraud-prod").startswith(
        "<!-- mlform-plan: fraud-prod -->\n")


def test_preview_policies_and_cost_are_shown_above_the_fold():
    """The results a reviewer decides on stay visible; only the long plan is folded."""
    many = [change(f"job{i}", attributes=2) for i in range(FOLD_LINES)]
    body = render_comment(document(many, preview=PREVIEW, policies=POLICIES, cost=COST))
    fold = body.index("<details><summary>The full plan (")
    assert body.index("| auc | 0.912 | 0.897 | -0.015 |") < fold
    assert body.index("| `auc >= 0.9` | ✅ passed (0.912) | ❌ would fail (0.897) |") < fold
    assert fold < body.index("| `~` | `job0` | training_job |")
    assert "`endpoint-rollback`: `api` (mlform.yaml:12:3): no rollback" in body
    assert "**Estimated cost: +$168.19/month" in body
    assert body.count("##### Model preview") == 1


def test_a_short_plan_is_not_folded():
    body = render_comment(document([change("train")]))
    assert "The full plan" not in body
    assert "| `~` | `train` | training_job | 🟡 update | train changed |" in body


def test_a_plan_too_long_for_a_comment_points_to_the_summary_and_keeps_the_preview():
    huge = [change(f"job{i}", attributes=40) for i in range(120)]
    body = render_comment(document(huge, preview=PREVIEW), plan_file="pr.json")
    assert len(body) < 65_536
    assert "> ✂️ The full plan (" in body and "too long for a comment" in body
    assert "| auc | 0.912 | 0.897 | -0.015 |" in body
    assert body.rstrip().endswith("(`mlform apply pr.json`); a plan made against an older "
                                  "state is refused and must be made again.</sub>")


def test_the_job_summary_has_no_marker_and_folds_nothing_but_attribute_diffs():
    many = [change(f"job{i}", attributes=2) for i in range(FOLD_LINES)]
    summary = render_summary(document(many, preview=PREVIEW), digest="sha256:" + "a" * 64)
    assert summary.startswith("### mlform plan for `fraud`\n\n**Plan: 0 to add, 40 to change")
    assert "<!--" not in summary and "The full plan" not in summary
    assert "Planned against state serial 7, plan sha256:aaaaaaaaaaaa." in summary


def test_ci_comment_on_a_file_that_is_not_a_plan_is_a_clear_error(run_mlform, tmp_path):
    (tmp_path / "notes.json").write_text("{}")
    for name, message in [("missing.json", "error: plan file not found: missing.json\n"
                                           "help: create one with 'mlform plan --out FILE'"),
                          ("notes.json", "error: notes.json is not an mlform plan file")]:
        done = run_mlform(["ci", "comment", name, "--comment-file", "c.md"], tmp_path)
        assert done.returncode == 1 and done.stderr.startswith(message), done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "c.md").exists()


def test_the_markdown_and_text_plans_show_the_preview_too():
    """`plan --preview --format markdown|text` (json prints the section as it is)."""
    from mlform.engine.views.plan_markdown import render as markdown
    from mlform.engine.views.plan_text import render as text

    doc = document([change("train")], preview=PREVIEW)
    assert "| auc | 0.912 | 0.897 | -0.015 |" in markdown(doc)
    assert "\n    auc 0.912 -> 0.897 (-0.015)\n    gate auc >= 0.9 would fail (0.897)\n" \
        in text(doc, color=False)
