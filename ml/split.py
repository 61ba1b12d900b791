"""Which columns a training run learns from and which rows it holds out.

Every provider trains on the rows and features these two functions pick, so a job
seeded alike holds out the same rows on this machine and in a SageMaker container,
and gates judge the same held-out data on both. Imports only pandas and
numpy (runs inside job containers).

The rows are scikit-learn's `train_test_split` with the seed as `random_state`,
written out in numpy: importing scikit-learn took seconds of every run's start, and
the same seed must keep holding out the same rows as in earlier releases.
"""

from __future__ import annotations

import math
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
    two rows (a class of one cannot reach both sides), so small classes still reach
    both sides.
    """
    if not 0 < test_size < 1:
        raise InputError(f"test_size must be between 0 and 1, not {test_size}")
    rows = len(frame)
    n_test = math.ceil(test_size * rows)
    n_train = rows - n_test
    if n_train == 0:
        raise InputError(f"test_size {test_size} of {rows} row(s) leaves no training rows")
    labels = frame[target] if stratify and frame[target].value_counts().min() >= 2 else None
    if labels is None:
        train, test = _shuffled(rows, n_train, n_test, seed)
    else:
        train, test = _stratified(labels.to_numpy(), n_train, n_test, seed)
    return (frame.iloc[train].reset_index(drop=True),
            frame.iloc[test].reset_index(drop=True))


def _shuffled(rows: int, n_train: int, n_test: int, seed: int) -> tuple[Any, Any]:
    """scikit-learn's ShuffleSplit."""
    import numpy as np

    order = np.random.RandomState(seed).permutation(rows)
    return order[n_test:n_test + n_train], order[:n_test]


def _stratified(labels: Any, n_train: int, n_test: int, seed: int) -> tuple[Any, Any]:
    """scikit-learn's StratifiedShuffleSplit: each class's share of both sides as near
    its share of the rows as whole rows allow, ties broken by the seeded generator."""
    import numpy as np

    classes, indices, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if n_train < len(classes) or n_test < len(classes):
        side, n = ("training", n_train) if n_train < len(classes) else ("held-out", n_test)
        raise InputError(f"the {side} rows ({n}) are fewer than the classes "
                         f"({len(classes)}): change test_size or add rows")
    by_class = np.split(np.argsort(indices, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    train: list[Any] = []
    test: list[Any] = []
    for i in range(len(classes)):
        members = by_class[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(members[:train_counts[i]])
        test.extend(members[train_counts[i]:train_counts[i] + test_counts[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(counts: Any, draws: int, rng: Any) -> Any:
    """How many of `draws` rows each class gets: floors of the proportional shares, the
    rest to the largest remainders (ties broken at random)."""
    import numpy as np

    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)
