"""mlform.ml.fingerprint: which inputs name a run, and why a change trains again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mlform.engine.provider import DiffRequest, ResourceRef, default_diff
from mlform.ml import trainers
from mlform.ml.fingerprint import (
    RERUN_INPUTS,
    RERUN_REASONS,
    code_change_reason,
    code_digest,
    fingerprint,
    run_id_for,
)

BASE = {"dataset": "local://datasets/tx/v1", "algorithm": "mlp_classifier", "target": "label",
        "hyperparameters": {"epochs": 3}}


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param({"dataset": "local://datasets/tx/v2"},
                 [("dataset", "new training data means a new run")], id="data"),
    pytest.param({"hyperparameters": {"epochs": 4}},
                 [("hyperparameters.epochs", "new hyperparameters mean a new run")],
                 id="hyperparameters"),
    pytest.param({"seed": 7}, [("seed", "another seed means a new run")], id="seed"),
    pytest.param({"test_size": 0.3}, [("test_size", "another held-out split means a new run")],
                 id="test_size"),
    pytest.param({"features": ["x0", "x1"]}, [("features", "other features mean a new run")],
                 id="features"),
    pytest.param({"exclude": ["noise"]}, [("exclude", "other features mean a new run")],
                 id="exclude"),
    pytest.param({"target": "fraud"}, [("target", "another target means a new run")],
                 id="target"),
    pytest.param({"algorithm": "logistic_regression"},
                 [("algorithm", "another algorithm means a new run")], id="algorithm"),
    pytest.param({"labels": "local://datasets/labels/v1"},
                 [("labels", "new labels mean a new run")], id="labels"),
    pytest.param({"timeout": "1h"}, [("timeout", None)], id="timeout-updates-in-place"),
])
def test_each_run_defining_input_gives_its_reason(change, expected):
    """The reasons, as a plan built with RERUN_INPUTS and RERUN_REASONS shows them."""
    diff = default_diff(DiffRequest(ResourceRef("train", "training_job"), BASE, {},
                                    {**BASE, **change}), frozenset(RERUN_INPUTS), RERUN_REASONS)
    assert [(c.path, c.reason if c.forces_replacement else None) for c in diff.changes] == \
        expected


@pytest.mark.parametrize(("inputs", "prior", "now", "changed", "expected"), [
    pytest.param({"entrypoint": "train.py"}, "aaa", "bbb", [], "train.py changed",
                 id="script-edited"),
    pytest.param({"algorithm": "mlp_classifier"}, "aaa", "bbb", [],
                 "built-in trainer mlp_classifier changed", id="trainer-upgraded"),
    pytest.param({"entrypoint": "train.py"}, "aaa", "aaa", [], None, id="same-code"),
    pytest.param({"entrypoint": "train.py"}, None, "bbb", [], None,
                 id="state-from-an-earlier-release-has-no-digest"),
    pytest.param({"algorithm": "mlp_classifier"}, "91bd1b441a749740", "bbb", [], None,
                 id="trainers-of-the-release-before-the-move-train-alike"),
    pytest.param({"entrypoint": "train.py"}, "91bd1b441a749740", "bbb", [], "train.py changed",
                 id="a-script-is-judged-by-its-own-digest"),
    pytest.param({"entrypoint": "other.py"}, "aaa", "bbb", ["entrypoint"], None,
                 id="another-script-explains-itself"),
    pytest.param({"algorithm": "mlp_regressor"}, "aaa", "bbb", ["algorithm"], None,
                 id="another-algorithm-explains-itself"),
    pytest.param({"entrypoint": "train.py"}, "aaa", "bbb", ["seed", "hyperparameters.lr"],
                 "train.py changed", id="other-changes-do-not-hide-it"),
])
def test_code_change_reason(inputs, prior, now, changed, expected):
    assert code_change_reason(inputs, prior, now, changed) == expected


@pytest.mark.parametrize("written", [
    pytest.param({"seed": 0}, id="seed"),
    pytest.param({"test_size": 0.2}, id="test_size"),
    pytest.param({"test_size": "0.2"}, id="test_size-as-text"),
    pytest.param({"exclude": []}, id="exclude"),
    pytest.param({"hyperparameters": {}}, id="hyperparameters"),
])
def test_writing_a_default_out_names_the_same_run(written):
    bare = {"dataset": "d", "algorithm": "mlp_classifier", "target": "y"}
    assert run_id_for("train", fingerprint({**bare, **written}, "c")) == \
        run_id_for("train", fingerprint(bare, "c"))


@pytest.mark.parametrize(("job", "change"), [
    pytest.param("other", {}, id="another-job"),
    pytest.param("train", {"seed": 1}, id="another-seed"),
    pytest.param("train", {"code": "d"}, id="other-code"),
])
def test_anything_run_defining_names_another_run(job, change):
    code = change.pop("code", "c")
    assert run_id_for(job, fingerprint({**BASE, **change}, code)) != \
        run_id_for("train", fingerprint(BASE, "c"))


def test_run_ids_are_those_of_earlier_releases():
    """Runs stored by earlier releases are found again (their ids were computed so)."""
    fields = {"dataset": "d", "feature_view": None, "labels": None, "algorithm": "a",
              "entrypoint": None, "hyperparameters": {}, "seed": 0, "test_size": 0.2,
              "target": "y", "features": None, "exclude": [], "code_digest": "c"}
    assert fingerprint({"dataset": "d", "algorithm": "a", "target": "y"}, "c") == fields
    assert run_id_for("train", fields) == "d96c1af04b019353"  # computed by the previous release


def test_the_code_of_a_built_in_trainer_is_the_trainers_module(tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    assert code_digest(script) == hashlib.sha256(b"print('hi')\n").hexdigest()[:16]
    assert code_digest(None) == \
        hashlib.sha256(Path(trainers.__file__).read_bytes()).hexdigest()[:16]
