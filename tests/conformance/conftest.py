"""The conformance kit's fixture: `harness`, once per provider in `HARNESSES`.

The aws harness runs on the moto server of the aws suite: its conftest is loaded here
under another name (`aws_conftest`) so that its fixtures serve this folder as well.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from harnesses import HARNESSES, SLOW, Harness

_AWS_TESTS = Path(__file__).resolve().parents[1] / "providers" / "aws"
if str(_AWS_TESTS) not in sys.path:  # the aws conftest imports moto_extensions by name
    sys.path.insert(0, str(_AWS_TESTS))
_spec = importlib.util.spec_from_file_location("aws_conftest", _AWS_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
aws_conftest = importlib.util.module_from_spec(_spec)
sys.modules["aws_conftest"] = aws_conftest
_spec.loader.exec_module(aws_conftest)

moto_url = aws_conftest.moto_url
aws = aws_conftest.aws


@pytest.fixture(params=[pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
                        for name in sorted(HARNESSES)])
def harness(request: pytest.FixtureRequest) -> Harness:
    return HARNESSES[request.param](request)
