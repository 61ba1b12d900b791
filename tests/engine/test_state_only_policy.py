"""Retraining policies that live in state only: one handler in the engine, used by every
provider whose platform has no such object (aws, gcp, azure, ray)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pydantic
import pytest
from mlform.engine.dispatch import StateOnlyRetrainingPolicyHandler
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
    UpdateRequest,
)

POLICY = {"training_job": "train", "triggers": [{"schedule": "1d"}]}
REF = ResourceRef("retrain", "retraining_policy")


def _handler(tmp_path: Path) -> StateOnlyRetrainingPolicyHandler:
    return StateOnlyRetrainingPolicyHandler(ProviderContext(
        stack="s", stack_dir=tmp_path, provider_name="p", config={}, data_dir=tmp_path))


def test_create_starts_the_schedule_and_update_keeps_it_and_the_last_action(tmp_path):
    handler = _handler(tmp_path)
    created = handler.create(CreateRequest(resource=REF, inputs=POLICY, idempotency_key="k"),
                             Progress())
    assert created.outputs["last_action"] is None
    prior = {**created.outputs, "last_action": {"action": "retrain"}}
    updated = handler.update(UpdateRequest(resource=REF, inputs=POLICY, prior_inputs=POLICY,
                                           prior_outputs=prior, changes=[]), Progress())
    assert updated.outputs == prior
    seen = handler.observe(ObserveRequest(resource=REF, inputs=POLICY,
                                                outputs=updated.outputs))
    assert seen.exists and seen.outputs == prior
    assert not handler.observe(ObserveRequest(resource=REF, inputs=POLICY, outputs=None)).exists
    assert handler.delete(DeleteRequest(resource=REF, inputs=POLICY, outputs=prior), Progress()).error is None


def test_a_policy_that_does_not_validate_is_refused_at_create(tmp_path):
    with pytest.raises(pydantic.ValidationError):
        _handler(tmp_path).create(CreateRequest(resource=REF, inputs={"training_job": "t",
                                                                      "triggers": [{}]},
                                                idempotency_key="k"), Progress())


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure", "ray"])
def test_each_cloud_and_cluster_provider_keeps_policies_with_the_one_handler(provider):
    module = importlib.import_module(f"mlform.providers.{provider}.policy")
    assert issubclass(module.RetrainingPolicyHandler, StateOnlyRetrainingPolicyHandler)
