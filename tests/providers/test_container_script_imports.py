"""The serving scripts shipped into the clouds' containers put their own folder on
`sys.path` there (they run as top-level modules beside the `mlform` package they ship
with). Imported as part of mlform, as the tests and moto's InvokeEndpoint do, they must
not: their folders hold a `packaging.py`, which then shadowed the `packaging` library
for everything imported later in the process (a regression: azure-ai-ml's and
evidently's imports failed in the test worker that had imported the SageMaker script)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["mlform.providers.aws.container_serve",
                                    "mlform.providers.gcp.container_serve",
                                    "mlform.providers.azure.container_score"])
def test_importing_a_serving_script_leaves_top_level_names_alone(module):
    probe = (f"import sys, importlib; before = list(sys.path); importlib.import_module({module!r}); "
             "import packaging.version; "
             "assert sys.path == before, sys.path[:2]; "
             "assert packaging.version.Version('1.0'), packaging.__file__")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
