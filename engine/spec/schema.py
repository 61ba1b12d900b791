"""The JSON Schema of the stack format, generated from the pydantic models.

`specs/mlform.schema.json` is this function's output, committed so editors can
validate specs; a test fails when it is stale.
"""

from __future__ import annotations

import json

SCHEMA_ID = "https://mlform.dev/schemas/mlform.schema.json"


def schema() -> dict:
    from .models import StackFile

    doc = StackFile.model_json_schema(mode="validation")
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = SCHEMA_ID
    doc["title"] = "mlform stack (mlform.yaml)"
    return doc


def schema_json() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
