"""Sensitive values in a model's stack, through the installed command: a path built from one,
a gate bound and the card's text fields are used, and never printed nor stored in clear
(terminal, state, audit log, incidents, registry files and the card)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA_DIR = "vault-dir-7f3a9c"
OWNER = "owner-secret-41d2"
USE = "use-secret-93be"
MIN_PASS = "0.0123457"
MIN_FAIL = "0.999931"

STACK = """
    version: 1
    stack: sensitive
    providers:
      local: {}
    variables:
      data_dir: {type: string, sensitive: true}
      min_auc: {type: number, sensitive: true}
      owner: {type: string, sensitive: true}
      use: {type: string, sensitive: true}
    resources:
      transactions:
        type: dataset
        source: ${var.data_dir}/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: logistic_regression
        target: is_fraud
        hyperparameters: {epochs: 2}
      fraud_model:
        type: model
        artifact: ${train.artifact}
        owner: ${var.owner}
        intended_use: "scoring, for ${var.use}"
        gates:
          - metric: auc
            min: ${var.min_auc}
"""
SECRETS = (DATA_DIR, OWNER, USE, MIN_PASS, MIN_FAIL)


def _args(data_dir: str, min_auc: str) -> list[str]:
    return ["--var", f"data_dir={data_dir}", "--var", f"min_auc={min_auc}",
            "--var", f"owner={OWNER}", "--var", f"use={USE}"]


def _leaks(stack_dir: Path, *texts: str) -> list[str]:
    """Each (secret, where) found in the command's output or under .mlform."""
    found = [(s, "output") for s in SECRETS for t in texts if s in t]
    for path in (stack_dir / ".mlform").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(s, str(path)) for s in SECRETS if s.encode() in data]
    return [f"{s} in {where}" for s, where in found]


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory, stack_writer) -> Path:
    """The tests run in order: a plan that fails, an apply whose gate fails, one that passes."""
    from mlform.engine.scaffold import write_sample_data

    directory = stack_writer(tmp_path_factory.mktemp("sensitive"), STACK)
    write_sample_data(directory / DATA_DIR / "transactions.csv", rows=600, seed=1)
    return directory


@pytest.mark.e2e
def test_missing_source_built_from_a_secret_is_not_printed(stack_dir, run_mlform):
    got = run_mlform(["plan", "--no-color", *_args("wrong-" + DATA_DIR, MIN_PASS)], stack_dir)
    assert got.returncode == 1, got.stdout + got.stderr
    assert "error: cannot plan 'transactions': source (sensitive) not found\n" in got.stderr
    assert not _leaks(stack_dir, got.stdout, got.stderr)


@pytest.mark.e2e
def test_failed_gate_with_a_sensitive_bound_says_so_without_the_bound(stack_dir, run_mlform):
    got = run_mlform(["apply", "--auto-approve", "--no-color", *_args(DATA_DIR, MIN_FAIL)],
                     stack_dir, timeout=300)
    assert got.returncode == 1, got.stdout + got.stderr
    assert "gate 'auc >= (sensitive)' failed: measured 0." in got.stdout + got.stderr
    assert (stack_dir / ".mlform" / "audit.jsonl").is_file()
    assert not _leaks(stack_dir, got.stdout, got.stderr)


@pytest.mark.e2e
def test_registered_model_card_shows_sensitive_fields_as_such(stack_dir, run_mlform):
    got = run_mlform(["apply", "--auto-approve", "--no-color", *_args(DATA_DIR, MIN_PASS)],
                     stack_dir, timeout=300)
    assert got.returncode == 0, got.stdout + got.stderr
    version = stack_dir / ".mlform" / "local" / "registry" / "fraud_model" / "1"
    card = json.loads((version / "card.json").read_text())
    assert (card["owner"], card["intended_use"]) == ("(sensitive)", "(sensitive)")
    assert card["gates"][0]["gate"] == "auc >= (sensitive)"
    assert card["gates"][0]["min"] is None and card["gates"][0]["sensitive"] == ["min"]
    assert "- Owner: (sensitive)" in (version / "card.md").read_text()
    assert "<dt>Owner</dt><dd>(sensitive)</dd>" in (version / "card.html").read_text()
    assert not _leaks(stack_dir, got.stdout, got.stderr)
