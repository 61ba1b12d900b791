"""Source bundles for SageMaker's framework containers (script mode).

A bundle is a `sourcedir.tar.gz` holding an entry script, the settings it reads
(`mlform_job.json`) and mlform's portable core (`mlform.ml`) under its package
path, so the container trains, evaluates and serves exactly as the local
provider does and a custom script can `import mlform.ml.artifact` there too (and the
older name, through `mlform.ml.launch`). Nothing of any provider is shipped. Bundles
are built byte-for-byte reproducibly and stored content-addressed: uploaded once per
content.
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
from urllib.parse import urlencode

from .errors import AwsError
from .handler import describe_or_none

SETTINGS_FILE = "mlform_job.json"
ENTRY_SCRIPTS = {"train": "container_train.py", "evaluate": "container_evaluate.py",
                 "serve": "container_serve.py"}
CORE_PACKAGE = "mlform.ml"


def mlform_modules() -> dict[str, bytes]:
    """The portable core, `mlform.ml`, every module file of it as installed (found
    without importing it), under its package path. Nothing of any provider is shipped:
    the entry scripts and custom scripts import `mlform.ml.*` only."""
    spec = importlib.util.find_spec(CORE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AwsError(f"mlform's portable core ({CORE_PACKAGE}) is missing; reinstall mlform")
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


def upload_once(s3: Any, bucket: str, key: str, data: bytes, tags: dict[str, str]) -> None:
    """Put `data` at `key` unless an object is there already (keys are content-addressed)."""
    if describe_or_none(s3.head_object, Bucket=bucket, Key=key) is None:
        s3.put_object(Bucket=bucket, Key=key, Body=data, Tagging=urlencode(tags))
