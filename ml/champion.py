"""The champion a `better_than: champion` gate compares with, as every provider hands it
to the evaluation (`mlform.ml.gates.evaluate_gates`).

A provider finds the version its registry's `champion` alias names and writes into the
evaluation's settings what `named` returns: `{"name": "version 3"}` with that version's
artifact fetched into a folder beside the candidate's, None when there is no champion
yet (or it is the candidate itself), or why none can be compared. The job, or the
provider itself where gates run in-process, turns those settings and the folder into
what `evaluate_gates` takes with `load`. Imports nothing of the engine: job containers
run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .gates import Champion

ALIAS = "champion"
"""The alias `better_than: champion` names."""
SETTING = "champion"
"""The key of the evaluation settings that holds `named`'s answer."""


def wanted(gates: Iterable[Any]) -> bool:
    """Whether any gate compares with the champion (read by attribute or by key)."""
    return any((g.get("better_than") if isinstance(g, dict) else
                getattr(g, "better_than", None)) for g in gates)


def same_artifact(one: str | None, other: str | None) -> bool:
    """Whether two artifact locations name the same run (a folder with or without its
    trailing slash)."""
    return one is not None and other is not None and \
        str(one).rstrip("/") == str(other).rstrip("/")


def named(version: Any) -> dict[str, str]:
    """The settings' value for a champion found: its version, in words."""
    return {"name": f"version {version}"}


def load(setting: Any, directory: str | Path | None) -> Champion | str | None:
    """What `evaluate_gates` takes as `champion`, from the settings' value and the
    folder the champion's artifact was fetched into: the loaded `Champion`, None
    when there is none yet, or why it cannot be compared (a string, passed on)."""
    if not isinstance(setting, dict):
        return setting
    name = str(setting.get("name") or "the champion")
    if directory is None or not Path(directory).is_dir():
        return f"no artifact of the champion ({name}) reached the evaluation"
    from .artifact import load_predictor

    try:
        return Champion(load_predictor(directory), name)
    except (OSError, ValueError) as e:
        return f"the champion ({name}) cannot be loaded to compare with: {e}"
