"""The components that group the serving side: one per endpoint, and the readiness gate.

Components only group resources (their arguments come from components/plan.py); the
providers talk to Databricks.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.component import Component, output
from components.plan import READINESS_GATE, SERVING_ENDPOINT


class ServingEndpoint(Component):
    """One serving endpoint: created (foundation or custom model) or only read (pay-per-token)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(SERVING_ENDPOINT, name, None, opts)

    def finish(self, children: Mapping[str, pulumi.Resource]) -> None:
        (endpoint,) = children.values()
        self.register_outputs({k: output(endpoint, k) for k in ("name", "endpoint_id", "url")})


class ReadinessGate(Component):
    """One gate for every endpoint of the stack: waits for all of them at once, in one worker,
    so twenty endpoints rolling out take as long as the slowest, not five rounds of four.
    Formerly the component `EndpointsReady`, the name of the provider resource it holds."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(READINESS_GATE, name, None, opts)

    def finish(self, children: Mapping[str, pulumi.Resource]) -> None:
        (gate,) = children.values()
        self.register_outputs({"ready": output(gate, "ready")})
