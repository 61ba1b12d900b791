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

from collections.abc import Callable, Iterable
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


def evaluation_settings(gates: list[Any], seed: int, sensitive: Iterable[tuple[int, str]],
                        champion: tuple[str | None, Any] | None = None
                        ) -> tuple[dict[str, Any], str | None]:
    """What a cloud gate-evaluation job is given: its settings (gates, seed, hidden bounds
    and, when a gate compares with the champion, the champion's `named` value) and the
    location of the champion's artifact to fetch beside the candidate's (None: nothing to
    fetch). `champion` is (artifact, named value) as the provider found it, or None when
    there is none yet."""
    settings: dict[str, Any] = {
        "gates": [g.model_dump(mode="json") if hasattr(g, "model_dump") else g
                  for g in gates],
        "seed": seed, "sensitive": sorted([i, b] for i, b in sensitive)}
    artifact, setting = champion if champion else (None, None)
    if wanted(gates):
        settings[SETTING] = setting
    return settings, artifact


def judged(artifact: str, evaluation_format: Any, settings: dict[str, Any],
           champion_artifact: str | None) -> dict[str, Any]:
    """What an evaluation's fingerprint covers: the candidate, the format of the result,
    the settings and the champion's artifact, since a new champion is a new judgement."""
    return {"artifact": artifact, "format": evaluation_format, **settings,
            **({"champion_artifact": champion_artifact} if champion_artifact else {})}


def in_registry(registry: Path, version_folder: Callable[[Any], Path], artifact: str
                ) -> tuple[dict[str, str], Path] | None:
    """(named value, artifact folder) of the version a file registry's `aliases.json`
    names champion (`registry/<model>/aliases.json`, `<version folder>/meta.json` and
    `artifact/`, as the ray and slurm providers keep them), None when there is none yet
    or it is `artifact` itself. `version_folder(version)` is the folder of a version."""
    version = (_json(Path(registry) / "aliases.json") or {}).get(ALIAS)
    if version is None:
        return None
    folder = Path(version_folder(version))
    if same_artifact((_json(folder / "meta.json") or {}).get("artifact"), artifact):
        return None
    return named(version), folder / "artifact"


def _json(path: Path) -> Any:
    """The JSON document at `path`, or None when there is none (or half of one, being
    written on a shared filesystem)."""
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
