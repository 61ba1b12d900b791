"""The pull-request review loop through the installed command, on a scratch git repository:
a stack applied on main, a branch with a change, `plan --preview` and `ci comment` on it,
the reviewed plan applied after the merge, and a plan made before that apply refused."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import write_fraud_data

pytestmark = pytest.mark.e2e

STACK = """
    version: 1
    stack: fraud-review
    backend: {type: local}
    providers:
      local: {}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: mlp_classifier
        target: is_fraud
        hyperparameters: {epochs: 3, lr: 0.01}
      fraud_model:
        type: model
        artifact: ${train.artifact}
        gates:
          - metric: auc
            min: 0.7
    """


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                           *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def fingerprint(stack: Path) -> dict[str, str]:
    """Every file of the stack but the repository's, by content digest."""
    return {str(p.relative_to(stack)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(stack.rglob("*")) if p.is_file() and ".git" not in p.parts}


def serial(stack: Path) -> int:
    return json.loads((stack / ".mlform" / "state.json").read_text())["serial"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, run_mlform, stack_writer):
    """A git repository whose main branch holds the fraud stack, applied."""
    stack = tmp_path_factory.mktemp("review") / "repo"
    stack_writer(stack, STACK)
    write_fraud_data(stack, seed=3)
    (stack / ".gitignore").write_text(".mlform/\n")
    git(stack, "init", "-q", "-b", "main")
    git(stack, "add", ".")
    git(stack, "commit", "-q", "-m", "fraud stack")
    done = run_mlform(["apply", "--auto-approve", "--no-color"], stack, timeout=600)
    assert done.returncode == 0, done.stderr
    yield stack
    run_mlform(["destroy", "--auto-approve"], stack, timeout=300)


def test_preview_shows_the_worse_model_and_its_failing_gate_and_changes_nothing(
        repo, run_mlform, tmp_path):
    """A data drop with its labels flipped: the preview trains on it in a scratch copy, and
    the plan shows the champion's auc against the candidate's on the champion's held-out
    rows, the gate that would fail, in text, in the saved plan and in the comment; the
    real stack (state, files, git tree) is exactly as it was."""
    import pandas as pd

    git(repo, "checkout", "-q", "-b", "bad-data", "main")
    data = repo / "data" / "transactions.csv"
    frame = pd.read_csv(data)
    frame["is_fraud"] = 1 - frame["is_fraud"]
    frame.to_csv(data, index=False)
    git(repo, "commit", "-q", "-am", "new data drop")
    before, before_serial = fingerprint(repo), serial(repo)
    champion = json.loads((repo / ".mlform" / "state.json").read_text())
    champion_auc = champion["resources"]["train"]["outputs"]["metrics"]["auc"]
    plan_file = tmp_path / "bad.json"
    try:
        done = run_mlform(["plan", "--preview", "--no-color", "--out", plan_file], repo,
                          timeout=600)
        assert done.returncode == 0, done.stderr
        assert fingerprint(repo) == before and serial(repo) == before_serial
        assert git(repo, "status", "--porcelain") == ""
    finally:
        git(repo, "checkout", "-q", "main")

    assert "fraud_model (retrained by train), judged on the champion's held-out rows, " \
           "300 rows:" in done.stdout
    found = re.search(r"    auc (\d\.\d{3}) -> (\d\.\d{3}) \(-\d\.\d{3}\)\n", done.stdout)
    assert found, done.stdout
    old, new = float(found[1]), float(found[2])
    assert old == round(champion_auc, 3) and new < 0.7 < old
    assert f"    gate auc >= 0.7 would fail ({new:.3f})\n" in done.stdout

    saved = json.loads(plan_file.read_text())["preview"]["models"]
    assert [(m["model"], m["training_job"]) for m in saved] == [("fraud_model", "train")]
    assert saved[0]["gates"][0] | {"measured": None, "before": None} == {
        "gate": "auc >= 0.7", "kind": "metric", "passed": False, "measured": None,
        "detail": "", "before": None, "passed_before": True}

    comment = run_mlform(["ci", "comment", plan_file], repo)
    assert comment.returncode == 0, comment.stderr
    body = comment.stdout
    assert body.startswith("<!-- mlform-plan: fraud-review -->\n")
    assert "**Plan: 1 to add, 2 to change, 1 to destroy.** · preview: 1 gate(s) would fail" \
        in body
    assert f"| auc | {old:.3f} | {new:.3f} | {new - old:+.3f} |" in body
    assert f"| `auc >= 0.7` | ✅ passed ({old:.3f}) | ❌ would fail ({new:.3f}) |" in body


def test_pull_request_comment_then_the_reviewed_plan_applies_and_a_stale_one_is_refused(
        repo, run_mlform, tmp_path):
    """A hyperparameter change on a branch: `ci comment` writes the comment body and
    appends the job summary; after the merge the saved plan applies exactly, and a plan
    saved at the same time as it is refused as stale once the state has moved on."""
    git(repo, "checkout", "-q", "-b", "more-epochs", "main")
    spec = repo / "mlform.yaml"
    spec.write_text(spec.read_text().replace("epochs: 3", "epochs: 4"))
    git(repo, "commit", "-q", "-am", "train one more epoch")
    reviewed, early = tmp_path / "plan.json", tmp_path / "early.json"
    start = serial(repo)
    for path in (reviewed, early):
        done = run_mlform(["plan", "--no-color", "--out", path], repo)
        assert done.returncode == 0, done.stderr
    comment, summary = tmp_path / "comment.md", tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    done = run_mlform(["ci", "comment", reviewed, "--comment-file", comment,
                       "--summary-file", summary, "--id", "fraud-prod"], repo)
    assert done.returncode == 0, done.stderr
    body = comment.read_text()
    assert body.splitlines()[:4] == [
        "<!-- mlform-plan: fraud-prod -->", "#### mlform plan for `fraud-review`", "",
        "**Plan: 1 to add, 1 to change, 1 to destroy.**"]
    assert "| `-/+` | `train` | training_job | 🟣 replace |" in body
    assert "hyperparameters.epochs forces replacement in the spec: 3 -> 4 (new " \
           "hyperparameters mean a new run)" in body
    assert "- hyperparameters.epochs: 3\n+ hyperparameters.epochs: 4  # forces replacement" \
        in body
    assert f"Planned against state serial {start}" in body
    assert "(`mlform apply plan.json`)" in body
    assert summary.read_text().startswith("earlier step\n### mlform plan for `fraud-review`")
    assert "<!--" not in summary.read_text()

    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "more-epochs")
    done = run_mlform(["apply", "--no-color", reviewed], repo, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Apply complete: 1 added, 1 changed, 1 destroyed." in done.stdout
    after = serial(repo)
    assert after > start

    done = run_mlform(["apply", "--no-color", early], repo)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"error: plan file {early} is stale: it was made against state serial {start}, and "
        f"the state is now at serial {after}\n")
    assert "Traceback" not in done.stderr and serial(repo) == after
