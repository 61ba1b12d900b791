"""Retraining policies: recorded in state only, as the engine's
`StateOnlyRetrainingPolicyHandler` keeps them; nothing about a policy lives in
the Azure ML workspace."""

from __future__ import annotations

from mlform.engine.dispatch import StateOnlyRetrainingPolicyHandler

from .handler import Handler


class RetrainingPolicyHandler(StateOnlyRetrainingPolicyHandler, Handler):
    pass
