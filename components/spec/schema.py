"""The JSON Schema of a whole stack file, for editors and for `python -m components schema`."""

from __future__ import annotations

from typing import Any

from components.spec.constants import PROJECT
from components.spec.stack import StackSpec


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a whole stack file, for editors (keys carry the project namespace)."""
    inner = StackSpec.model_json_schema(mode="validation")
    defs = inner.pop("$defs", {})
    properties = {f"{PROJECT}:{k}": v for k, v in inner["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{PROJECT} stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{PROJECT}:{k}" for k in inner.get("required", [])],
                "patternProperties": {"^pulumi:": {}},
                "additionalProperties": False,
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "environment": {},
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": defs,
    }
