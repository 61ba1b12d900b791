"""Plan-time checks of a `training_job` that uses the built-in trainers: the
hyperparameters each algorithm takes (see `trainers.settings`, which apply runs) and
the columns named as target and features against the dataset's columns.

Any provider whose training runs these trainers (local, aws) calls them from its
`check`. A value known only after apply is skipped.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from mlform.engine.diagnostics import did_you_mean
from mlform.engine.provider import Problem
from mlform.engine.values import Secret, StoredSecret, Unknown

from .trainers import DEFAULTS, LINEAR, TASKS

INTEGER, NUMBER = "an integer", "a number"
KINDS = {"epochs": INTEGER, "batch_size": INTEGER, "lr": NUMBER, "weight_decay": NUMBER}
LOWEST = {"epochs": (1, True), "batch_size": (1, True), "lr": (0, False),
          "weight_decay": (0, True)}
"""Name -> (bound, inclusive): the smallest value each numeric hyperparameter takes."""
ENCODINGS = ("onehot", "index")


def training_problems(inputs: dict[str, Any],
                      upstream: dict[str, dict[str, Any]]) -> list[Problem]:
    problems = []
    algorithm = inputs.get("algorithm")
    hyperparameters = inputs.get("hyperparameters")
    if isinstance(algorithm, str) and algorithm in TASKS and isinstance(hyperparameters, dict):
        problems += hyperparameter_problems(algorithm, hyperparameters)
    columns = (upstream.get("dataset") or {}).get("columns")
    if inputs.get("dataset") is not None and _known_names(columns):
        problems += column_problems(inputs, [str(c) for c in columns])
    return problems


def hyperparameter_problems(algorithm: str, hyperparameters: dict[str, Any]) -> list[Problem]:
    problems = []
    for name, value in hyperparameters.items():
        path = ("hyperparameters", name)
        if name not in DEFAULTS:
            hint = did_you_mean(str(name), DEFAULTS)
            problems.append(Problem(path, f"unknown hyperparameter '{name}' for '{algorithm}'",
                                    key=True, help=(hint + " " if hint else "")
                                    + f"'{algorithm}' takes: {', '.join(DEFAULTS)}"))
            continue
        if _unjudged(value):
            continue
        wrong = _wrong_value(algorithm, name, value)
        if wrong:
            problems.append(Problem(path, f"hyperparameter '{name}' of '{algorithm}' {wrong[0]}",
                                    help=wrong[1]))
    return problems


def column_problems(inputs: dict[str, Any], columns: list[str]) -> list[Problem]:
    """The target and features must be columns of the dataset, and apart."""
    shown = ", ".join(columns)
    problems = []
    target = inputs.get("target")
    if isinstance(target, str) and target not in columns:
        problems.append(Problem(("target",), f"target column '{target}' is not in the dataset",
                                help=_column_help(target, columns, shown)))
    features = inputs.get("features")
    for i, feature in enumerate(features if isinstance(features, list) else []):
        if not isinstance(feature, str):
            continue
        if feature not in columns:
            problems.append(Problem(("features", i),
                                    f"feature column '{feature}' is not in the dataset",
                                    help=_column_help(feature, columns, shown)))
        elif feature == target:
            problems.append(Problem(("features", i),
                                    f"the target '{target}' cannot also be a feature",
                                    help="remove it from 'features'"))
    return problems


def _wrong_value(algorithm: str, name: str, value: Any) -> tuple[str, str] | None:
    """(what is wrong, the fix) for a value `trainers.settings` would refuse."""
    if name == "hidden_layers":
        if algorithm in LINEAR:
            if not value:
                return None
            network = "mlp_classifier" if TASKS[algorithm] == "classification" \
                else "mlp_regressor"
            return ("takes no hidden layers",
                    f"remove 'hidden_layers', or use '{network}' for a network with hidden "
                    "layers")
        if not isinstance(value, list) or not all(_integer(v) and int(v) >= 1 for v in value):
            return (f"must be a list of layer widths, not {value!r}",
                    "write the width of each hidden layer, e.g. hidden_layers: [64, 32]")
        return None
    if name == "categorical_encoding":
        if value in ENCODINGS:
            return None
        return (f"must be 'onehot' or 'index', not {value!r}",
                "write categorical_encoding: onehot (or index)")
    kind = KINDS[name]
    if not (_integer(value) if kind == INTEGER else _number(value)):
        example = DEFAULTS[name]
        return (f"must be {kind}, not {value!r}", f"write {name}: {example}")
    bound, inclusive = LOWEST[name]
    number = float(value)
    if number < bound or (number == bound and not inclusive):
        relation = "at least" if inclusive else "greater than"
        return (f"must be {relation} {bound}, not {value!r}", f"write {name}: {DEFAULTS[name]}"
                if DEFAULTS[name] > bound else f"write a {name} {relation} {bound}")
    return None


def _integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    if isinstance(value, str):
        try:
            int(value)
        except ValueError:
            return False
        return True
    return False


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _unjudged(value: Any) -> bool:
    """Values a check leaves alone: known only after apply, or sensitive (reported apart)."""
    if isinstance(value, Unknown | Secret | StoredSecret):
        return True
    if isinstance(value, list):
        return any(_unjudged(v) for v in value)
    return False


def _known_names(columns: Any) -> TypeGuard[list[str | int | float]]:
    return isinstance(columns, list) and bool(columns) and \
        all(isinstance(c, str | int | float) for c in columns)


def _column_help(name: str, columns: list[str], shown: str) -> str:
    hint = did_you_mean(name, columns)
    return (hint + " " if hint else "") + f"the dataset's columns: {shown}"
