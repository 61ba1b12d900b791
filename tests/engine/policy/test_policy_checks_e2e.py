"""Policy checks at plan, through the installed command: each shipped default passes and
fails on a small stack, a failed mandatory rule fails `plan` (exit 1) at the resource's
place and `apply` of the saved plan, and a malformed rule is an error at its own place."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

BASE = {
    "version": 1,
    "stack": "pol",
    "providers": {"null": {}},
    "resources": {
        "data": {"type": "dataset", "source": "data.csv"},
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "mlp_classifier", "target": "y",
                  "compute": {"gpus": 2, "instances": 2}},
        "scorer": {"type": "model", "artifact": "${train.artifact}",
                   "gates": [{"metric": "auc", "min": 0.8}]},
        "api": {"type": "endpoint", "variants": {"champion": {"model": "${scorer.uri}"}},
                "lifecycle": {"prevent_destroy": True}},
    },
}


def write(stack: Path, spec: dict, **files: str) -> Path:
    stack.mkdir(parents=True, exist_ok=True)
    (stack / "mlform.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (stack / "data.csv").write_text("x,y\n1,0\n2,1\n")
    for name, text in files.items():
        (stack / name).write_text(text)
    return stack


def key_location(stack: Path, resource: str) -> str:
    """Where `resource:` is written under `resources:` (as the error must say)."""
    lines = (stack / "mlform.yaml").read_text().splitlines()
    return next(f"mlform.yaml:{i}:3" for i, line in enumerate(lines, 1)
                if line == f"  {resource}:")


def with_changes(enable: list, *edits) -> dict:
    spec = copy.deepcopy(BASE)
    spec["policies"] = {"enable": enable}
    for path, value in edits:
        *head, last = path
        target = spec
        for seg in head:
            target = target.setdefault(seg, {})
        if value is DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return spec


DELETE = object()

# (policy, edit that breaks it, type and name of the resource that then fails)
DEFAULTS = [
    ("endpoint-rollback-conditions",
     (("resources", "api", "rollback"), {"max_error_rate": None}), "endpoint", "api"),
    ("model-has-gate", (("resources", "scorer", "gates"), []), "model", "scorer"),
    ("credit-model-fairness-gate",
     (("resources", "scorer", "tags"), {"decisions": "credit"}), "model", "scorer"),
    ("credit-model-fairness-gate",  # marked by its intended use instead of a tag
     (("resources", "lender"), {"type": "model", "artifact": "${train.artifact}",
                                "intended_use": "Consumer Credit approvals",
                                "gates": [{"metric": "auc", "min": 0.8}]}),
     "model", "lender"),
    ("max-gpus-per-job",
     (("resources", "train", "compute"), {"gpus": 4, "instances": 2}), "training_job", "train"),
    ("endpoint-prevent-destroy", (("resources", "api", "lifecycle"), DELETE), "endpoint", "api"),
]
ALL = sorted({d[0] for d in DEFAULTS} | {"destroy-needs-approval"})


def test_every_default_policy_passes_a_stack_that_keeps_it(tmp_path, run_mlform):
    got = run_mlform(["plan", "--no-color"], write(tmp_path, with_changes(ALL)))
    assert got.returncode == 0, got.stderr
    assert f"Policies: {len(ALL)} rule(s) checked, all passed" in got.stdout
    for policy in ALL:
        assert f"pass {policy} (mandatory)" in got.stdout


def test_every_default_policy_fails_a_stack_that_breaks_it(tmp_path, run_mlform):
    stack = write(tmp_path, with_changes(ALL, *[edit for _, edit, _, _ in DEFAULTS]))
    got = run_mlform(["plan", "--no-color"], stack)
    assert got.returncode == 1, got.stdout + got.stderr
    assert "Traceback" not in got.stderr
    for policy, _, rtype, resource in DEFAULTS:
        head = f"error: policy '{policy}' failed for {rtype} '{resource}'"
        assert head in got.stderr, f"{policy} did not fail for {resource}"
        block = got.stderr[got.stderr.index(head):].split("\nerror: ")[0]
        assert f"--> {key_location(stack, resource)}" in block, block
        assert f"FAIL {policy} (mandatory)" in got.stdout
    assert "pass destroy-needs-approval (mandatory)" in got.stdout


def test_a_fairness_gate_and_a_higher_gpu_limit_satisfy_their_policies(tmp_path, run_mlform):
    spec = with_changes(["credit-model-fairness-gate", "max-gpus-per-job"],
                        (("resources", "scorer", "tags"), {"decisions": "credit"}),
                        (("resources", "scorer", "gates"),
                         [{"fairness": "demographic_parity_difference",
                           "sensitive_column": "x", "max": 0.1}]),
                        (("resources", "train", "compute"), {"gpus": 4, "instances": 2}))
    spec["policies"]["params"] = {"max_gpus_per_job": 8}
    got = run_mlform(["plan", "--no-color"], write(tmp_path, spec))
    assert got.returncode == 0, got.stderr
    assert "Policies: 2 rule(s) checked, all passed" in got.stdout


def test_destroy_needs_the_approval_label(tmp_path, run_mlform):
    spec = with_changes(["destroy-needs-approval"])
    stack = write(tmp_path, spec)
    applied = run_mlform(["apply", "--auto-approve"], stack)
    assert applied.returncode == 0, applied.stderr
    del spec["resources"]["api"]
    write(tmp_path, spec)

    refused = run_mlform(["plan", "--no-color"], stack)
    assert refused.returncode == 1
    assert "error: policy 'destroy-needs-approval' failed for endpoint 'api'" in refused.stderr
    for args, env in ((["--label", "approved-destroy"], None),
                      ([], {"MLFORM_LABELS": "needs-review, approved-destroy"})):
        approved = run_mlform(["plan", "--no-color", *args], stack, env=env)
        assert approved.returncode == 0, approved.stderr
        assert "pass destroy-needs-approval (mandatory): 4/4" in approved.stdout
    refused = run_mlform(["apply", "--auto-approve"], stack)
    assert refused.returncode == 1
    assert "refusing to apply these changes: mandatory policies failed: " \
           "destroy-needs-approval" in refused.stderr
    assert "api" in json.loads((stack / ".mlform" / "state.json").read_text())["resources"]


def test_an_advisory_failure_warns_and_plan_succeeds(tmp_path, run_mlform):
    spec = with_changes([{"name": "model-has-gate", "severity": "advisory"}],
                        (("resources", "scorer", "gates"), []))
    got = run_mlform(["plan", "--no-color"], write(tmp_path, spec))
    assert got.returncode == 0, got.stderr
    assert "warning: policy 'model-has-gate' failed for model 'scorer'" in got.stderr
    assert "FAIL model-has-gate (advisory)" in got.stdout


def test_results_are_in_json_markdown_and_the_saved_plan_which_apply_refuses(tmp_path,
                                                                             run_mlform):
    spec = with_changes(["model-has-gate"], (("resources", "scorer", "gates"), []))
    stack = write(tmp_path, spec)
    as_json = run_mlform(["plan", "--format", "json"], stack)
    assert as_json.returncode == 1
    section = json.loads(as_json.stdout)["policies"]
    assert section["passed"] is False and section["mandatory_failed"] == 1
    assert section["violations"] == [{
        "rule": "model-has-gate", "severity": "mandatory", "resource": "scorer",
        "type": "model", "location": key_location(stack, "scorer"),
        "message": "the model has no gate; add one under gates (e.g. {metric: auc, min: 0.8})"}]
    as_markdown = run_mlform(["plan", "--format", "markdown"], stack)
    assert "**Policies ❌ 1 rule(s) checked: 1 mandatory and 0 advisory failure(s)**" \
        in as_markdown.stdout
    assert "| `model-has-gate` | mandatory | 1 of 1 fail |" in as_markdown.stdout

    saved = run_mlform(["plan", "--no-color", "--out", "plan.json"], stack)
    assert saved.returncode == 1
    assert json.loads((stack / "plan.json").read_text())["policies"]["passed"] is False
    refused = run_mlform(["apply", "plan.json"], stack)
    assert refused.returncode == 1
    assert "error: refusing to apply plan file plan.json: mandatory policies failed: " \
           "model-has-gate" in refused.stderr
    assert not (stack / ".mlform" / "state.json").exists()


RULES = """\
rules:
  - name: canary-only
    severity: advisory
    resource_types: [endpoint]
    condition: resource.rollout.strategy == "canary"
    message: endpoints roll out by canary
  - name: owners
    resource_types: [model]
    condition: |
      has(resource.owner)
      && resource.owner.endsWith("@example.com")
    message: every model names an owner at example.com
"""


def test_rules_from_policy_files_the_stack_and_the_organisation(tmp_path, run_mlform):
    org = tmp_path / "org"
    org.mkdir()
    (org / "org.yaml").write_text(RULES)
    spec = copy.deepcopy(BASE)
    spec["policies"] = {"rules": [{"name": "two-instances", "resource_types": ["training_job"],
                                   "condition": "resource.compute.instances <= 2",
                                   "message": "at most two machines"}]}
    stack = write(tmp_path / "stack", spec)
    got = run_mlform(["plan", "--no-color"], stack, env={"MLFORM_POLICY_PATH": str(org)})
    assert got.returncode == 1
    assert "pass two-instances (mandatory): 1/1" in got.stdout
    assert "warning: policy 'canary-only' failed for endpoint 'api'" in got.stderr
    assert "error: policy 'owners' failed for model 'scorer': every model names an owner " \
           "at example.com" in got.stderr
    spec["resources"]["scorer"]["owner"] = "risk@example.com"
    write(tmp_path / "stack", spec)
    got = run_mlform(["plan", "--no-color", "--policy", org / "org.yaml"], stack)
    assert got.returncode == 0, got.stderr


# (condition as written in the file, summary, line:col of the fault, help)
MALFORMED = [
    ("condition: resource.name == && true", "the condition is not valid CEL", "33", ""),
    ("condition: has(resource.rollbak.max_error_rate)", "endpoint has no field 'rollbak'",
     "29", "help: did you mean 'rollback'?"),
    ("condition: |\n      resource.rollout.steps.size() > 0\n"
     "      && resource.rollout.stratgy == 'canary'",
     "endpoint.rollout has no field 'stratgy'", "+2:27", "help: did you mean 'strategy'?"),
    ("condition: resource.compute.gpus < params.max_gpu", "no parameter 'max_gpu'", "47",
     "help: did you mean 'max_gpus_per_job'?"),
    ("condition: resource.name.lowerAscii() == 'api'", "unknown function 'lowerAscii'",
     "30", ""),
    ("condition: endpoint.rollback != null", "unknown name 'endpoint'", "16",
     "help: a rule reads resource, change, plan, params, labels"),
]
FAILING = [
    ('condition: resource.compute.instances + "a" == 1',
     "cannot be evaluated on 'api': found no matching overload", "16", ""),
    ("condition: resource.compute.instances",
     "cannot be evaluated on 'api': the condition gave int 1, not true or false", "16", ""),
]


@pytest.mark.parametrize("cases", [MALFORMED, FAILING], ids=["compile", "evaluate"])
def test_each_malformed_rule_is_an_error_at_its_place(cases, tmp_path, run_mlform):
    text, where = "rules:\n", {}
    for i, (condition, _, column, _) in enumerate(cases):
        line = text.count("\n") + 4
        text += (f"  - name: broken-{i}\n    resource_types: [endpoint]\n    message: x\n"
                 f"    {condition}\n")
        offset, _, col = column.rpartition(":")
        where[i] = f"{line + int(offset or 0)}:{col}"
    stack = write(tmp_path, BASE, **{"rules.yaml": text})
    got = run_mlform(["plan", "--no-color", "--policy", "rules.yaml"], stack)
    assert got.returncode == 1
    assert "Traceback" not in got.stderr
    for i, (_, summary, _, help_line) in enumerate(cases):
        head = f"error: policy 'broken-{i}'"
        assert head in got.stderr, got.stderr
        block = got.stderr[got.stderr.index(head):].split("\n\n")[0]
        assert summary in block and f"--> rules.yaml:{where[i]}\n" in block, block
        assert help_line in block


def test_an_unknown_default_policy_is_named_with_a_suggestion(tmp_path, run_mlform):
    spec = with_changes(["model-has-gates"])
    stack = write(tmp_path, spec)
    got = run_mlform(["plan", "--no-color"], stack)
    assert got.returncode == 1
    line = next(i for i, text in enumerate((stack / "mlform.yaml").read_text().splitlines(), 1)
                if "model-has-gates" in text)
    assert "error: no default policy named 'model-has-gates'" in got.stderr
    assert f"--> mlform.yaml:{line}:" in got.stderr
    assert "help: did you mean 'model-has-gate'?" in got.stderr


def test_validate_checks_the_stacks_own_rules_at_their_place(tmp_path, run_mlform):
    spec = copy.deepcopy(BASE)
    spec["policies"] = {"rules": [{"name": "owner", "resource_types": ["model"],
                                   "condition": "has(resource.ownr)", "message": "x"}]}
    stack = write(tmp_path, spec)
    line = next(i for i, text in enumerate((stack / "mlform.yaml").read_text().splitlines(), 1)
                if "has(resource.ownr)" in text)
    column = (stack / "mlform.yaml").read_text().splitlines()[line - 1].index("ownr") + 1
    got = run_mlform(["validate"], stack)
    assert got.returncode == 1
    assert "error: policy 'owner': model has no field 'ownr'" in got.stderr
    assert f"--> mlform.yaml:{line}:{column}" in got.stderr
    assert "help: did you mean 'owner'?" in got.stderr
