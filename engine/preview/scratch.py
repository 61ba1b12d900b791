"""A scratch copy of a stack that trains on this machine, for `plan --preview`.

The copy lives in a temporary directory: the stack's files (without `.mlform` and
`.git`), and a generated `mlform.yaml` holding only the training jobs to preview and
what they need (datasets, feature views), every provider turned into the `local`
provider and the backend into a local one. A dataset file longer than the row cap
is replaced in the copy by a seeded sample. Applying the copy (the `mlform` command,
in its own process, targeted at the jobs) touches nothing of the real stack: not its
state, its files, nor anything its providers run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIP = {".mlform", ".git"}
"""Never copied: the real stack's state and provider data, and version control."""
SCRATCH_UNSET = ("MLFORM_POLICY_PATH", "MLFORM_LABELS")
"""Settings of the real plan that the scratch apply must not inherit."""


@dataclass
class Scratch:
    dir: Path
    jobs: tuple[str, ...]
    sampled: dict[str, str] = field(default_factory=dict)
    """Dataset name -> "N of M rows" for each dataset the copy samples."""

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def apply(self, vars_: list[str], var_files: list[str]) -> str | None:
        """Train the jobs in the copy; None on success, else the reason it failed."""
        command = [sys.executable, "-m", "mlform.engine.cli.main", "apply", "--auto-approve",
                   "--no-color", *[a for job in self.jobs for a in ("--target", job)],
                   *[a for v in vars_ for a in ("--var", v)],
                   *[a for f in var_files for a in ("--var-file", f)], str(self.dir)]
        # The organisation's policies judge the real plan, not the copy's training-only one.
        env = {k: v for k, v in os.environ.items() if k not in SCRATCH_UNSET}
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL)
        if done.returncode == 0:
            return None
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        return "; ".join(errors[-6:]) or f"the scratch apply exited with {done.returncode}"

    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / ".mlform" / "state.json").read_text())

    def data_dir(self, provider: str) -> Path:
        """Where the local provider named `provider` keeps its data in the copy."""
        return self.dir / ".mlform" / provider


def needed(stack, jobs: list[str]) -> list[str]:
    """The jobs and everything they depend on, in the spec's order."""
    keep: set[str] = set()
    todo = list(jobs)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        spec = stack.resources[name]
        todo += list(spec.dependencies) + list(spec.model.depends_on)
    return [n for n in stack.resources if n in keep]


def build(stack, jobs: list[str], row_cap: int) -> Scratch:
    """The scratch copy of `stack` that trains `jobs` (resource names)."""
    names = needed(stack, jobs)
    root = Path(stack.dir)
    scratch = Scratch(Path(tempfile.mkdtemp(prefix="mlform-preview-")), tuple(jobs))
    try:
        resources, skip_files = {}, set()
        for name in names:
            spec = stack.resources[name]
            raw = spec.model.model_dump(mode="json", exclude_defaults=True,
                                        exclude={"lifecycle", "description"})
            raw["type"] = spec.type
            if spec.type == "dataset":
                sampled = _sample(root, scratch.dir, name, raw, row_cap)
                if sampled:
                    scratch.sampled[name], copied_from = sampled
                    skip_files.add(copied_from)
            resources[name] = raw
        _copy_files(root, scratch.dir, skip_files)
        spec_file = {
            "version": 1, "stack": f"{stack.name}-preview", "backend": {"type": "local"},
            "providers": {name: {"type": "local"} for name in stack.providers},
            "variables": {k: v.model_dump(mode="json", exclude_defaults=True)
                          for k, v in stack.variables.items()},
            "resources": resources,
        }
        (scratch.dir / "mlform.yaml").write_text(json.dumps(spec_file, indent=1))
    except BaseException:
        scratch.close()
        raise
    return scratch


def _copy_files(root: Path, dest: Path, skip: set[Path]) -> None:
    def ignore(directory: str, entries: list[str]) -> set[str]:
        here = Path(directory)
        return {e for e in entries
                if (here == root and e in SKIP) or (here / e).resolve() in skip
                or (here == root and e == "mlform.yaml")}

    shutil.copytree(root, dest, ignore=ignore, dirs_exist_ok=True, symlinks=True)


def _sample(root: Path, dest: Path, name: str, raw: dict[str, Any],
            row_cap: int) -> tuple[str, Path] | None:
    """Write a seeded sample of a dataset's file into the copy when it has more rows than
    `row_cap`; returns ("N of M rows", the real file) then, None when it fits."""
    source = raw.get("source")
    if not isinstance(source, str) or "${" in source or "://" in source:
        return None
    path = (root / source).resolve()
    fmt = raw.get("format") or ("parquet" if path.suffix == ".parquet" else "csv")
    if not path.is_file() or row_cap <= 0:
        return None
    import pandas as pd

    frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    if len(frame) <= row_cap:
        return None
    sample = frame.sample(n=row_cap, random_state=0).sort_index()
    target = dest / "preview-data" / f"{name}{path.suffix or '.csv'}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        sample.to_parquet(target, index=False)
    else:
        sample.to_csv(target, index=False)
    raw["source"] = os.path.relpath(target, dest)
    raw["format"] = fmt
    return f"{row_cap:,} of {len(frame):,} rows", path
