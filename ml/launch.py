"""Runs a job's own training script inside a remote job container:

    python -m mlform.ml.launch <script> [args...]

as `python <script>` would, with the artifact module also importable under the name
earlier releases documented for scripts (`mlform.providers.local.artifact`). Job
containers carry mlform.ml only, no provider code, so that name is an alias of
`mlform.ml.artifact` set up here; on the local provider it is a real module.
"""

from __future__ import annotations

import runpy
import sys
import types

LEGACY_ARTIFACT = "mlform.providers.local.artifact"


def alias_legacy_artifact() -> bool:
    """Make `import mlform.providers.local.artifact` give `mlform.ml.artifact` where
    mlform's providers are not installed (a job container); True when it did."""
    import importlib.util

    import mlform
    from mlform.ml import artifact

    if importlib.util.find_spec("mlform.providers") is not None:
        return False  # a full install: the real module re-exports mlform.ml.artifact

    parent: types.ModuleType = mlform
    *packages, leaf = LEGACY_ARTIFACT.split(".")[1:]
    for name in packages:
        full = f"{parent.__name__}.{name}"
        module = sys.modules.setdefault(full, types.ModuleType(full))
        setattr(parent, name, module)
        parent = module
    setattr(parent, leaf, artifact)
    sys.modules[LEGACY_ARTIFACT] = artifact
    return True


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m mlform.ml.launch <script> [args...]")
    alias_legacy_artifact()
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
