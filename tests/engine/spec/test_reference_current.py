"""The generated files committed to the repository match what the code generates now."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlform.engine.cli.reference import render_cli_reference
from mlform.engine.spec.reference import render_reference
from mlform.engine.spec.schema import schema_json

ROOT = Path(__file__).resolve().parents[3]

GENERATED = [
    pytest.param("specs/mlform.schema.json", schema_json,
                 "mlform schema > specs/mlform.schema.json", id="json-schema"),
    pytest.param("docs/reference/stack.md", render_reference,
                 "python -m mlform.engine.spec.reference > docs/reference/stack.md",
                 id="stack-reference"),
    pytest.param("docs/cli.md", render_cli_reference,
                 "python -m mlform.engine.cli.reference > docs/cli.md", id="cli-reference"),
]


@pytest.mark.parametrize(("path", "render", "regenerate"), GENERATED)
def test_generated_file_is_current(path, render, regenerate):
    committed = (ROOT / path).read_text(encoding="utf-8")
    assert committed == render(), f"{path} is stale: regenerate it with `{regenerate}`"


def test_reference_documents_every_resource_type_and_attribute():
    from mlform.engine.spec.models import RESOURCE_OUTPUTS, RESOURCE_TYPES

    text = render_reference()
    for rtype, model in RESOURCE_TYPES.items():
        section = text.split(f"\n### {rtype}\n", 1)[1].split("\n### ", 1)[0]
        for name, field in model.model_fields.items():
            if name in model.__mro__[1].model_fields:
                continue  # shared fields are documented once, under "Fields of every resource"
            assert f"| `{field.alias or name}` |" in section, f"{rtype}.{name} is missing"
        for attr in RESOURCE_OUTPUTS[rtype]:
            assert f"| `{attr}` |" in section, f"attribute {rtype}.{attr} is missing"


def test_cli_reference_documents_every_command():
    from mlform.engine.cli.main import COMMANDS

    text = render_cli_reference()
    for name in COMMANDS:
        assert f"\n### mlform {name}\n" in text
    for sub in ("list", "show", "rm", "mv", "unlock"):
        assert f"\n#### mlform state {sub}\n" in text
