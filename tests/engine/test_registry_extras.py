"""Every provider shipped with mlform whose SDK comes as an extra names that extra when it
cannot be loaded, so a user without it is told what to install."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mlform.engine.registry import EXTRAS

PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())


def test_each_shipped_provider_with_an_extra_of_its_name_is_hinted():
    shipped = PYPROJECT["project"]["entry-points"]["mlform.providers"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    needing = {ptype for ptype in shipped if ptype in extras}
    assert needing == {"local", "aws", "gcp", "azure", "ray"}
    assert {ptype: EXTRAS.get(ptype) for ptype in needing} == {p: p for p in needing}
