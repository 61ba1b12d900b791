"""Retraining policies: recorded in state only, as the engine's
`StateOnlyRetrainingPolicyHandler` keeps them; nothing about a policy lives in
the cluster."""

from __future__ import annotations

from mlform.engine.dispatch import StateOnlyRetrainingPolicyHandler

from .handler import RayHandler


class RetrainingPolicyHandler(StateOnlyRetrainingPolicyHandler, RayHandler):
    pass
