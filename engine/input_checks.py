"""Checks of resource inputs that every provider shares, for their `check` verbs:
sensitive values where a provider would keep them in clear, and a variant's model
written as a plain name instead of a reference to a model version.

Each returns `Problem`s at the input they concern; a value known only after apply
(`Unknown`) is never judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlform.engine.provider import Problem
from mlform.engine.values import Secret, StoredSecret

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def secret_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The path of every sensitive value inside `value`."""
    if isinstance(value, Secret | StoredSecret):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from secret_paths(v, path + (k,))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from secret_paths(v, path + (i,))


def sensitive_problems(inputs: dict[str, Any], rtype: str, where: str,
                       help: str) -> list[Problem]:
    """One problem per sensitive input of a resource whose inputs the provider keeps
    in clear (`where` says where)."""
    return [Problem(path, f"'{_dotted(path)}' is sensitive, but a {rtype}'s inputs are "
                          f"written in clear to {where}", help=help)
            for path in secret_paths(inputs)]


def plain_model_problems(variants: Any, looks_like_version: Any) -> list[Problem]:
    """Variants whose `model` is a bare resource name (`model: fraud_model`): it names no
    version and makes no dependency, so the endpoint would be created before the model.
    `looks_like_version(text)` says whether a string is already one of the provider's
    model version uris."""
    if not isinstance(variants, dict):
        return []
    found = []
    for vname, variant in variants.items():
        model = variant.get("model") if isinstance(variant, dict) else None
        if not isinstance(model, str) or looks_like_version(model):
            continue
        if _NAME.match(model):
            found.append(Problem(
                ("variants", vname, "model"),
                f"variant '{vname}': model '{model}' is a plain name, not a model version",
                help=f"refer to the model resource's uri: model: ${{{model}.uri}}"))
        else:
            found.append(Problem(
                ("variants", vname, "model"),
                f"variant '{vname}': model '{model}' is not a model version this provider "
                "can serve", help="refer to a model resource's uri, such as "
                                  "${fraud_model.uri}"))
    return found


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)
