"""Which columns a training run learns from and which rows it holds out.

Every provider trains on the rows and features these two functions pick, so a job
seeded alike holds out the same rows on this machine and in a SageMaker container,
and gates judge the same held-out data on both. Imports only pandas and
scikit-learn (runs inside job containers).
"""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """The job's inputs do not fit its data (a target or feature that is not a column,
    a split that holds out nothing): the user's mistake, reported in one line."""


def select_features(frame: Any, target: str, features: list[str] | None,
                    exclude: list[str] | None = None) -> list[str]:
    """The feature columns: `features` as given, else every column but the target and
    `exclude`, in the data's order."""
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise InputError(f"target column '{target}' is not in the data "
                         f"(columns: {', '.join(columns)})")
    if features is None:
        skip = set(exclude or [])
        return [c for c in columns if c != target and c not in skip]
    missing = [f for f in features if f not in columns]
    if missing:
        raise InputError(f"feature column(s) {', '.join(map(repr, missing))} not in the data "
                         f"(columns: {', '.join(columns)})")
    if target in features:
        raise InputError(f"the target '{target}' cannot also be a feature")
    return list(features)


def stratifies(algorithm: str | None) -> bool:
    """Whether the split keeps class proportions: for the built-in classifiers. A custom
    script's task is unknown before it runs, so its split is plain random."""
    from .trainers import TASKS

    return algorithm is not None and TASKS.get(algorithm) == "classification"


def split(frame: Any, target: str, test_size: float, seed: int,
          stratify: bool) -> tuple[Any, Any]:
    """(training rows, held-out rows); the same arguments always pick the same rows.

    A classification split is stratified by the target when every class has at least
    two rows (scikit-learn refuses otherwise), so small classes still reach both sides.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise InputError(f"test_size must be between 0 and 1, not {test_size}")
    labels = frame[target] if stratify and frame[target].value_counts().min() >= 2 else None
    train_rows, holdout = train_test_split(frame, test_size=test_size, random_state=seed,
                                           stratify=labels)
    return train_rows.reset_index(drop=True), holdout.reset_index(drop=True)
