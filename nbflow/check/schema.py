"""The JSON schema of nbflow.yaml, generated from the pydantic model."""

from __future__ import annotations

import json

SCHEMA_FILE = "schemas/nbflow.v1.schema.json"


def schema_text() -> str:
    from nbflow.check.manifest import json_schema

    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **json_schema()}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"
