"""The base of the project's Pulumi components: a component groups the resources the plan
declares under it, and registers its outputs once they exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi


def output(resource: pulumi.Resource, name: str) -> pulumi.Output[Any]:
    """An output of a resource by name (a dynamic resource's outputs are untyped attributes)."""
    if name == "id" and isinstance(resource, pulumi.CustomResource):
        return resource.id
    value = getattr(resource, name)
    assert isinstance(value, pulumi.Output), f"{name} is not an output of {resource}"
    return value


class Component(pulumi.ComponentResource):
    def finish(self, children: Mapping[str, pulumi.Resource]) -> None:
        """Register the component's outputs from its children (keyed by plan key)."""
        self.register_outputs({})
