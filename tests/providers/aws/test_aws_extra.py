"""`pip install mlform[aws]` installs what the aws provider imports on this machine
(under `plan`, `apply` and `watch`): every import in providers/aws (lazy ones
included; the container entry scripts excepted: they run in SageMaker's image) and,
transitively, in the mlform modules it reaches, is the standard library, mlform
itself, a base dependency, or a distribution in the `aws` extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FOLDERS = {"mlform.engine": ROOT / "engine", "mlform.ml": ROOT / "ml",
           "mlform.providers": ROOT / "providers"}
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml", "ruamel": "ruamel.yaml",
                "botocore": "boto3", "pydantic_core": "pydantic",
                "joblib": "scikit-learn"}  # joblib is scikit-learn's own dependency
ONLY_IN_CONTAINERS = {"torch"}
"""Imported only where a model trains or predicts: inside SageMaker's PyTorch image."""
ONLY_FOR_IMPORTED_MODELS = {"onnxruntime"}
"""Imported only to load a model brought as an ONNX file (`model: {source: ...}`, the
`byom` extra): needed where apply runs only by a stack that registers one."""


def imports(path: Path, package: str) -> set[str]:
    """Absolute module names `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def source(module: str) -> Path | None:
    for prefix, folder in FOLDERS.items():
        if module.startswith(prefix + "."):
            path = folder.joinpath(*module[len(prefix) + 1:].split("."))
            for candidate in (path.with_suffix(".py"), path / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def aws_imports() -> set[str]:
    """Third-party top-level names imported by providers/aws and, transitively, by the
    mlform modules it imports (lazy imports included)."""
    todo = [(path, "mlform.providers.aws") for path in (ROOT / "providers" / "aws").glob("*.py")
            if not path.name.startswith("container_")]
    seen: set[Path] = set()
    tops: set[str] = set()
    while todo:
        path, package = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imports(path, package):
            if not module.startswith("mlform."):
                tops.add(module.split(".")[0])
            elif found := source(module):
                todo.append((found, module if found.name == "__init__.py"
                             else module.rsplit(".", 1)[0]))
    return {t for t in tops if t not in sys.stdlib_module_names} - ONLY_IN_CONTAINERS \
        - ONLY_FOR_IMPORTED_MODELS


def installed_by_aws_extra() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["aws"]
    return {re.split(r"[<>=!~\[; ]", w, maxsplit=1)[0].lower() for w in wanted}


def test_the_scan_sees_lazy_and_transitive_imports():
    # guards the scan itself: lazy imports reached through mlform.ml (a monitor's drift
    # statistics in scipy, its performance check's sklearn) are found
    assert {"numpy", "pandas", "scipy", "sklearn", "boto3", "pyarrow"} <= aws_imports()


@pytest.mark.parametrize("name", sorted(aws_imports()))
def test_the_aws_extra_installs(name):
    assert DISTRIBUTION.get(name, name).lower() in installed_by_aws_extra(), \
        f"providers/aws imports '{name}': add it to the aws extra in pyproject.toml"
