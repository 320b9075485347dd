"""The JSON Schema of a whole stack file, for editors and for `python -m components schema`.

It checks the file's structure: unknown keys, wrong types, missing fields. It never refuses
what `validate` accepts, so it is written as loosely as pydantic's lax reading: a number may be
written as text (Pulumi hands top-level scalars to the program as strings), a boolean as
yes/no/on/off text, a version as a number, and every key with or without the project's
namespace. Rules it cannot express are `validate`-only; docs/stack-file.md lists them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from components.spec.constants import PROJECT
from components.spec.stack import StackSpec

# What pydantic's lax mode reads as an integer from text ("45", " +5 ", "1_000", "5.0"), loosely.
INTEGER_TEXT = r"^\s*[+-]?[0-9][0-9_]*(\.[0-9]*)?\s*$"
# What it reads as a boolean from text, in any case.
_BOOL_WORDS = ("true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0")
BOOLEAN_TEXT = "^(" + "|".join(
    "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word) for word in _BOOL_WORDS
) + ")$"


class _LaxSchema(GenerateJsonSchema):
    """Pydantic's schema, widened to every input its lax mode accepts."""

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        return {"anyOf": [super().int_schema(schema), {"type": "string", "pattern": INTEGER_TEXT}]}

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        return {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, {"type": "string", "pattern": BOOLEAN_TEXT}]}

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        if schema["expected"] == [True]:  # pay_per_token: true; pydantic also takes 1
            return {"enum": [True, 1]}
        return super().literal_schema(schema)


def _either(key: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [f"{PROJECT}:{key}"]}, {"required": [key]}]}


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a whole stack file, for editors: each key with the project's namespace
    (``databricks-braintrust:endpoints``) or without it (``endpoints``), as `validate` reads them."""
    inner = StackSpec.model_json_schema(mode="validation", schema_generator=_LaxSchema)
    defs = inner.pop("$defs", {})
    properties: dict[str, Any] = {}
    for key, value in inner["properties"].items():
        properties[f"{PROJECT}:{key}"] = value
        properties[key] = value
    config: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "patternProperties": {"^pulumi:": {}},
        "additionalProperties": False,
    }
    required = inner.get("required", [])
    if required:
        config["allOf"] = [_either(key) for key in required]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{PROJECT} stack file",
        "type": "object",
        "properties": {
            "config": config,
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "environment": {},
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": defs,
    }
