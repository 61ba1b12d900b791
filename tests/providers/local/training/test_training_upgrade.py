"""A training job applied by the release before the portable core plans no new run:
the built-in trainers moved into mlform.ml unchanged but for their import lines."""

from __future__ import annotations

import pytest
from mlform.engine.provider import DiffRequest, ResourceRef
from mlform.ml.fingerprint import code_digest
from mlform.providers.local.training.handler import TrainingJobHandler

JOB = ResourceRef("train", "training_job")
INPUTS = {"dataset": "local://datasets/tx/v1", "algorithm": "mlp_classifier",
          "target": "label", "hyperparameters": {"epochs": 3}}
BEFORE_THE_MOVE = "91bd1b441a749740"  # sha256[:16] of local/training/trainers.py then


@pytest.mark.parametrize(("recorded", "expected"), [
    pytest.param(BEFORE_THE_MOVE, [], id="trainers-before-the-move"),
    pytest.param(None, [], id="no-digest-recorded"),
    pytest.param("0123456789abcdef", [("code_digest", "built-in trainer mlp_classifier changed")],
                 id="other-trainer-code"),
])
def test_a_recorded_trainer_digest_plans_a_new_run_only_for_other_code(ctx, recorded,
                                                                        expected):
    diff = TrainingJobHandler(ctx).diff(
        DiffRequest(JOB, INPUTS, {"code_digest": recorded, "run_id": "r"}, INPUTS))
    assert diff.error is None
    assert [(c.path, c.reason) for c in diff.changes] == expected
    if expected:
        assert diff.changes[0].after == code_digest(None)
