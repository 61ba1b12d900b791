"""A training run's fingerprint: the inputs a trained model depends on, and why a
change to one of them means training again.

Every provider names its runs from `fingerprint(...)` and explains a re-run with
`RERUN_REASONS` and `code_change_reason`, so the same edit to a stack gives the same
plan, with the same words, on every platform. Plain data and hashing only: no
provider, engine or ML library is imported.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

RERUN_REASONS = {
    "dataset": "new training data means a new run",
    "feature_view": "new training data means a new run",
    "labels": "new labels mean a new run",
    "algorithm": "another algorithm means a new run",
    "entrypoint": "another training script means a new run",
    "hyperparameters": "new hyperparameters mean a new run",
    "seed": "another seed means a new run",
    "test_size": "another held-out split means a new run",
    "target": "another target means a new run",
    "features": "other features mean a new run",
    "exclude": "other features mean a new run",
}
"""Why a change to each of these top-level training_job inputs trains again."""
RERUN_INPUTS = tuple(RERUN_REASONS)
"""The training_job inputs a run depends on (besides its code), in a fixed order."""
CODE_PATH = "code_digest"
"""Where a plan shows a change of the training code whose name stayed the same."""
SAME_TRAINERS = frozenset({
    "91bd1b441a749740",  # mlform.providers.local.training.trainers before the move here
})
"""Code digests of built-in trainers of earlier releases that train exactly as the
current ones: moving them into mlform.ml changed only their import lines, and a stack
applied before must not retrain for that. Drop an entry when the trainers' results
change; add the old digest when an edit leaves them as they were."""
DEFAULTS: dict[str, Any] = {"seed": 0, "test_size": 0.2, "exclude": [], "hyperparameters": {}}
"""What an input left out means (the training_job model's defaults), so writing a
default out does not name another run."""


def fingerprint(inputs: dict[str, Any], code: str | None) -> dict[str, Any]:
    """The run-defining inputs (secrets already revealed), defaults filled in, with the
    digest of the code that trains."""
    fields: dict[str, Any] = {k: inputs.get(k) for k in RERUN_INPUTS}
    for key, default in DEFAULTS.items():
        if fields[key] is None:
            fields[key] = default
    fields["test_size"] = float(fields["test_size"])
    return {**fields, "code_digest": code}


def run_id_for(job: str, fingerprint: dict[str, Any], length: int = 16) -> str:
    """A stable name of the run: the same job and fingerprint always give the same id."""
    text = json.dumps({"job": job, **fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def code_digest(entrypoint: Path | None) -> str:
    """The digest of the code a run executes: the job's own script, or for a built-in
    algorithm the trainers module, so a changed trainer trains again too."""
    if entrypoint is None:
        from . import trainers  # imports no ML library until a trainer runs

        return file_digest(Path(trainers.__file__))
    return file_digest(entrypoint)


def code_change_reason(inputs: dict[str, Any], prior_code: str | None, code: str | None,
                       changed: list[str]) -> str | None:
    """Why the run must train again although its inputs name the same code, or None.

    `changed` holds the paths of the inputs that changed. A new script or algorithm
    explains itself (`RERUN_REASONS`); a prior run without a recorded digest (state
    from an earlier release) or with trainers known to train alike (`SAME_TRAINERS`)
    is not judged, so upgrading retrains nothing by itself.
    """
    if not (prior_code and code) or prior_code == code:
        return None
    if not inputs.get("entrypoint") and prior_code in SAME_TRAINERS:
        return None
    if any(path.split(".")[0] in ("entrypoint", "algorithm") for path in changed):
        return None
    what = inputs.get("entrypoint") or f"built-in trainer {inputs.get('algorithm')}"
    return f"{what} changed"
