"""Fixtures for the export tests: the aws suite's moto server (its conftest loaded under
another name, as the conformance kit does), and a runner of generated Pulumi programs
under Pulumi's mocks in build/pulumi-venv."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PULUMI_PYTHON = ROOT / "build" / "pulumi-venv" / "bin" / "python"
RUNNER = Path(__file__).resolve().parent / "pulumi_mocks_run.py"

_AWS_TESTS = ROOT / "tests" / "providers" / "aws"
if str(_AWS_TESTS) not in sys.path:  # the aws conftest imports moto_extensions by name
    sys.path.insert(0, str(_AWS_TESTS))
if "aws_conftest" in sys.modules:
    aws_conftest = sys.modules["aws_conftest"]
else:
    _spec = importlib.util.spec_from_file_location("aws_conftest", _AWS_TESTS / "conftest.py")
    assert _spec is not None and _spec.loader is not None
    aws_conftest = importlib.util.module_from_spec(_spec)
    sys.modules["aws_conftest"] = aws_conftest
    _spec.loader.exec_module(aws_conftest)

moto_url = aws_conftest.moto_url
aws = aws_conftest.aws


@pytest.fixture(scope="session")
def pulumi_mocks():
    """`pulumi_mocks(program_dir, tmp_dir)`: the resources the program declares under
    Pulumi's mocks, run in build/pulumi-venv (`make pulumi-venv`)."""
    if not PULUMI_PYTHON.exists():
        pytest.skip("build/pulumi-venv is absent: run `make pulumi-venv` (Pulumi's SDKs pin a "
                    "protobuf that conflicts with Ray Serve's, so they live in a venv of "
                    "their own)")

    def run(program: Path, scratch: Path) -> list[dict]:
        out = scratch / "declared.json"
        done = subprocess.run([str(PULUMI_PYTHON), str(RUNNER), str(program), str(out)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(out.read_text())

    return run
