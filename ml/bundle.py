"""The portable bundle a resource moves in between providers: its files and a manifest.

A bundle is a local staging directory:

    <staging>/manifest.json   {"format": 1, "type", "name", "source", "outputs",
                               "files": [{"path", "sha256", "size"}, ...]}
    <staging>/files/<path>    each file, by its path inside the bundle

`outputs` are the recorded outputs that carry over (metrics, gate results, data
version, run id ...). The source provider's `export` writes a bundle with `stage`;
the target provider's `import_` reads it with `load` (which refuses a staging copy
that does not match its manifest), puts the files into its own storage and proves
the copy with `verify_copy`, reading each file back. A provider only says which
files make up a resource and where it keeps them; digests, sizes and the refusal of
a corrupted copy are written once, here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
FILES = "files"


class BundleError(Exception):
    """A bundle that cannot be trusted: missing, malformed, or a file that differs."""


@dataclass(frozen=True)
class BundleFile:
    path: str
    """Relative, `/`-separated (`artifact/model.json`)."""
    sha256: str
    size: int


@dataclass(frozen=True)
class Bundle:
    directory: Path
    type: str
    name: str
    source: str
    """The provider it was exported from."""
    files: tuple[BundleFile, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def path(self, rel: str) -> Path:
        """The staged copy of file `rel`."""
        return self.directory / FILES / rel

    def file(self, rel: str) -> BundleFile:
        for f in self.files:
            if f.path == rel:
                return f
        raise BundleError(f"bundle of '{self.name}' has no file '{rel}'")

    def under(self, prefix: str) -> list[BundleFile]:
        """The files whose path starts with `prefix/`."""
        return [f for f in self.files if f.path.startswith(prefix.rstrip("/") + "/")]


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree(root: Path, prefix: str) -> dict[str, Path]:
    """Every file under `root` as `{prefix/relative path: file}`, for `stage`."""
    root = Path(root)
    return {f"{prefix}/{p.relative_to(root).as_posix()}": p
            for p in sorted(root.rglob("*")) if p.is_file()}


def listing(files: Mapping[str, Path | bytes]) -> tuple[tuple[str, int], ...]:
    """(path, size) of what a bundle of `files` would hold, without copying: the plan's
    "what is copied and its size"."""
    return tuple((rel, len(src) if isinstance(src, bytes) else Path(src).stat().st_size)
                 for rel, src in sorted(files.items()))


def stage(directory: Path, rtype: str, name: str, source: str,
          files: Mapping[str, Path | bytes], outputs: Mapping[str, Any]) -> Bundle:
    """Write a bundle of `files` (bundle path -> a file to copy, or its bytes) into
    `directory`, replacing what an earlier, interrupted export left there. The manifest
    is written last, so a bundle with a manifest is whole."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    (directory / FILES).mkdir(parents=True)
    entries = []
    for rel in sorted(files):
        _check_rel(rel)
        src, dest = files[rel], directory / FILES / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, bytes):
            dest.write_bytes(src)
        else:
            shutil.copyfile(src, dest)
        entries.append(BundleFile(rel, digest_file(dest), dest.stat().st_size))
    doc = {"format": FORMAT, "type": rtype, "name": name, "source": source,
           "outputs": dict(outputs),
           "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in entries]}
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, directory / MANIFEST)
    return Bundle(directory, rtype, name, source, tuple(entries), dict(outputs))


GATES_FILE = "gates.json"
"""A model's bundle holds its recorded gate results in this file."""


def gates_file(gates: list) -> dict[str, bytes]:
    """The file a model's export stages: its recorded gate results."""
    return {GATES_FILE: json.dumps(gates, indent=1, sort_keys=True).encode()}


def load_model(directory: Path) -> tuple[Bundle, list]:
    """A model's bundle (as `load`) and the gate results recorded with it; BundleError when
    either cannot be read."""
    bundle = load(directory)
    try:
        return bundle, json.loads(bundle.path(GATES_FILE).read_bytes())
    except (OSError, ValueError) as e:
        raise BundleError(f"bundle of '{bundle.name}': {GATES_FILE} cannot be read: {e}") \
            from None


def load(directory: Path) -> Bundle:
    """The bundle staged in `directory`, each staged file checked against the manifest."""
    directory = Path(directory)
    try:
        doc = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise BundleError(f"no bundle at {directory}: its export did not finish") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"bundle manifest {directory / MANIFEST} is not JSON: {e}") from None
    if doc.get("format") != FORMAT:
        raise BundleError(f"bundle at {directory} has format {doc.get('format')!r}; "
                          f"this mlform reads format {FORMAT}")
    bundle = Bundle(directory, doc["type"], doc["name"], doc["source"],
                    tuple(BundleFile(f["path"], f["sha256"], int(f["size"]))
                          for f in doc["files"]), doc.get("outputs") or {})
    for f in bundle.files:
        _check_rel(f.path)
        staged = bundle.path(f.path)
        if not staged.is_file():
            raise BundleError(f"bundle of '{bundle.name}': {f.path} is missing from {directory}")
        _compare(bundle, f, digest_file(staged), staged.stat().st_size, "the staged copy")
    return bundle


def verify_copy(bundle: Bundle, read: Callable[[str], bytes | Path | None],
                where: str) -> None:
    """Prove the copy at the target: `read(path)` returns each file as the target now
    holds it (its bytes, a local file, or None when it is missing). Raises `BundleError`
    naming the first file that differs; the caller fails the import with it."""
    for f in bundle.files:
        got = read(f.path)
        if got is None:
            raise BundleError(f"{f.path} of '{bundle.name}' is missing from {where} "
                              "after the copy")
        if isinstance(got, bytes):
            _compare(bundle, f, digest_of(got), len(got), where)
        else:
            _compare(bundle, f, digest_file(Path(got)), Path(got).stat().st_size, where)


def _compare(bundle: Bundle, f: BundleFile, sha: str, size: int, where: str) -> None:
    if sha != f.sha256 or size != f.size:
        raise BundleError(
            f"{f.path} of '{bundle.name}' differs in {where}: sha256 {sha[:12]} "
            f"({size} bytes), the manifest says {f.sha256[:12]} ({f.size} bytes); "
            "nothing was recorded, and the next apply copies it again")


def _check_rel(rel: str) -> None:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"bundle path '{rel}' must be relative, without '.' or '..'")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
