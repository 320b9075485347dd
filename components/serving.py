"""Serving endpoints and the stack's readiness gate, as components.

Components only wire validated values into resources; the providers talk to Databricks.
"""

from __future__ import annotations

import pulumi

from components.providers.endpoint import Endpoint
from components.providers.readiness import EndpointsReady as ReadinessGate
from components.spec import EndpointBase, Stack

TOKEN = "databricks-braintrust:serving"


def gate_endpoints(endpoints: list[tuple[str, str, str | None]]) -> dict[str, str]:
    """The gate's input from (name, revision, endpoint_id) of every endpoint: whenever it changes,
    the gate waits again. The id is part of it because an endpoint recreated with the same config
    (deleted out of band, or replaced for route_optimized) rolls out again from nothing."""
    return {name: f"{revision}@{endpoint_id}" if endpoint_id else revision
            for name, revision, endpoint_id in endpoints}


class ServingEndpoint(pulumi.ComponentResource):
    """One serving endpoint: created (foundation or custom model) or only read (pay-per-token)."""

    name: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    url: pulumi.Output[str]
    revision: pulumi.Output[str]

    def __init__(self, stack: Stack, endpoint: EndpointBase, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:ServingEndpoint", endpoint.name, None, opts)
        self.endpoint_name = endpoint.name
        self.flavor = endpoint.resolved_flavor()
        resource = Endpoint(endpoint.name, stack.endpoint_inputs(endpoint), pulumi.ResourceOptions(parent=self))
        self.name = resource.name  # type: ignore[attr-defined]
        self.endpoint_id = resource.endpoint_id
        self.url = resource.url
        self.revision = resource.revision
        self.register_outputs({"name": self.name, "endpoint_id": self.endpoint_id, "url": self.url})


class EndpointsReady(pulumi.ComponentResource):
    """One gate for every endpoint of the stack: waits for all of them at once, in one worker,
    so twenty endpoints rolling out take as long as the slowest, not five rounds of four."""

    ready: pulumi.Output[dict]

    def __init__(self, name: str, endpoints: list[ServingEndpoint], timeout_minutes: int,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:EndpointsReady", name, None, opts)
        revisions = pulumi.Output.all(*[e.revision for e in endpoints], *[e.endpoint_id for e in endpoints]).apply(
            lambda values: gate_endpoints([
                (e.endpoint_name, rev, eid)
                for e, rev, eid in zip(endpoints, values[: len(endpoints)], values[len(endpoints):], strict=True)
            ])
        )
        gate = ReadinessGate(
            name,
            {"endpoints": revisions, "timeout_seconds": float(timeout_minutes * 60)},
            pulumi.ResourceOptions(parent=self),
        )
        self.ready = gate.ready
        self.register_outputs({"ready": self.ready})
