"""The design the readiness gate replaces, for comparison only: each endpoint's `create` waits
for its own rollout, in the worker that created it (as terraform's resource does).

It is the project's EndpointProvider, unchanged, followed by the gate's own wait for that one
endpoint, so the two runs differ only in where the waiting happens. Pickled by reference, so
the provider process imports this module from the repository root.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult

from components.providers.endpoint import PAY_PER_TOKEN, EndpointProvider
from components.providers.readiness import DEFAULT_TIMEOUT, EndpointsReadyProvider


class WaitingEndpointProvider(EndpointProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        result = super().create(props)
        outs = result.outs or {}
        if outs.get("mode") != PAY_PER_TOKEN:
            gate = EndpointsReadyProvider()
            gate._creds = self._creds  # same credentials, same shared client
            gate._wait_all({"endpoints": {outs["name"]: outs["revision"]},
                            "timeout_seconds": DEFAULT_TIMEOUT})
        return result
