"""Source bundles for the platform's containers, and the command that runs one.

A bundle is a `bundle.tar.gz` holding an entry script (`train.py`, `serve.py`,
`evaluate.py`), the settings it reads (`mlform_job.json`) and mlform's portable core
(`mlform.ml`) under its package path, so the container trains, evaluates and serves
exactly as the local provider does; nothing of any provider is shipped. Bundles are
built byte-for-byte reproducibly and stored content-addressed in GCS: uploaded once.

The container's command is the image's `python` running a few lines (BOOTSTRAP) that
fetch the bundle from GCS with google-cloud-storage (in Vertex AI's prebuilt PyTorch
images), unpack it in a temporary folder and run the entry script there.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from .errors import GcpError

SETTINGS_FILE = "mlform_job.json"
ENTRY_SCRIPTS = {"train": "container_train.py", "evaluate": "container_evaluate.py",
                 "serve": "container_serve.py"}
CORE_PACKAGE = "mlform.ml"
SCRIPT_FOLDER = "script"
"""Where a training job's own script lies in its bundle, apart from the entry script."""

BOOTSTRAP = """\
import io, os, runpy, sys, tarfile, tempfile
from google.cloud import storage
bucket, _, key = sys.argv[1][len("gs://"):].partition("/")
data = storage.Client(project=os.environ.get("CLOUD_ML_PROJECT_ID")).bucket(bucket).blob(key).download_as_bytes()
here = tempfile.mkdtemp(prefix="mlform-")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    tar.extractall(here, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
sys.path.insert(0, here)
sys.argv = [os.path.join(here, sys.argv[2]), *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""Run by `python -c` in the container: fetch the bundle named by argv[1], run argv[2]."""


def command(bundle_uri: str, kind: str, *args: str) -> tuple[list[str], list[str]]:
    """(command, args) of a container running `kind`'s entry script from `bundle_uri`."""
    return ["python", "-c", BOOTSTRAP], [bundle_uri, f"{kind}.py", *args]


def mlform_modules() -> dict[str, bytes]:
    """The portable core, `mlform.ml`, every module file of it as installed (found
    without importing it), under its package path."""
    spec = importlib.util.find_spec(CORE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GcpError(f"mlform's portable core ({CORE_PACKAGE}) is missing; reinstall mlform")
    root = Path(next(iter(spec.submodule_search_locations)))
    prefix = CORE_PACKAGE.replace(".", "/")
    files = {"mlform/__init__.py": b""}
    for path in sorted(root.rglob("*.py")):
        files[f"{prefix}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def entry_script(kind: str) -> bytes:
    return (Path(__file__).parent / ENTRY_SCRIPTS[kind]).read_bytes()


def bundle(kind: str, settings: dict[str, Any], extra: dict[str, bytes] | None = None
           ) -> dict[str, bytes]:
    """The files of a bundle: `<kind>.py` as entry, settings, mlform modules, extras."""
    return {f"{kind}.py": entry_script(kind),
            SETTINGS_FILE: json.dumps(settings, sort_keys=True, indent=1).encode(),
            **mlform_modules(), **(extra or {})}


def tarball(files: dict[str, bytes]) -> bytes:
    """A gzip tar of `files` whose bytes depend on their names and content only."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def digest(data: bytes, length: int = 16) -> str:
    return hashlib.sha256(data).hexdigest()[:length]


def settings_of(data: bytes) -> dict[str, Any]:
    """The settings inside a bundle's bytes."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile(SETTINGS_FILE)
        return json.loads(member.read()) if member else {}
