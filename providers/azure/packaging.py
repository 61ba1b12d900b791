"""Code folders for Azure ML jobs and deployments, uploaded by the provider and registered
as code assets.

A folder holds an entry script (`train.py`, `evaluate.py`, `score.py`, `batch.py`), the
settings it reads (`mlform_job.json`), mlform's portable core (`mlform.ml`) under its
package path, and a custom training script when the job has one; nothing of any provider
is shipped. The provider uploads the files itself with azure-storage-blob to
`code/<resource>/<digest>/` (content-addressed: uploaded once) and registers a code asset
version `<digest>` pointing at that folder, instead of letting the SDK upload a local path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from .errors import AzureError

SETTINGS_FILE = "mlform_job.json"
ENTRY_SCRIPTS = {"train": "container_train.py", "evaluate": "container_evaluate.py",
                 "score": "container_score.py", "batch": "container_batch.py"}
CORE_PACKAGE = "mlform.ml"


def mlform_modules() -> dict[str, bytes]:
    """The portable core, `mlform.ml`, every module file of it as installed (found
    without importing it), under its package path."""
    spec = importlib.util.find_spec(CORE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AzureError(f"mlform's portable core ({CORE_PACKAGE}) is missing; reinstall "
                         "mlform")
    root = Path(next(iter(spec.submodule_search_locations)))
    prefix = CORE_PACKAGE.replace(".", "/")
    files = {"mlform/__init__.py": b""}
    for path in sorted(root.rglob("*.py")):
        files[f"{prefix}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def entry_script(kind: str) -> bytes:
    return (Path(__file__).parent / ENTRY_SCRIPTS[kind]).read_bytes()


def folder(kind: str, settings: dict[str, Any], extra: dict[str, bytes] | None = None
           ) -> dict[str, bytes]:
    """The files of a code folder: `<kind>.py` as entry, settings, mlform.ml, extras."""
    return {f"{kind}.py": entry_script(kind),
            SETTINGS_FILE: json.dumps(settings, sort_keys=True, indent=1).encode(),
            **mlform_modules(), **(extra or {})}


def digest(files: dict[str, bytes], length: int = 16) -> str:
    """A digest of the folder's names and contents."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:length]
