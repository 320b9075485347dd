"""Field types shared by the endpoint and stack models, with the rules every such field obeys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict

MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not key.strip() or len(key) > 255:
            raise ValueError(f"tag key {key!r} must be 1 to 255 characters")
        if len(value) > 255:
            raise ValueError(f"tag {key!r} has a value over 255 characters (shorten it)")
    return dict(tags)


def _version_text(value: Any) -> Any:
    # YAML reads `version: 3` as an int; the API wants the string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _positive_version(value: str) -> str:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{value!r} is not a model version (use a positive number such as \"3\")")
    return value


ModelVersion = Annotated[str, BeforeValidator(_version_text), AfterValidator(_positive_version)]
