"""One whole stack through the real provider process, walked the way the engine walks it.

The resources and their inputs are the ones `components/program.py` declares (endpoints from
`StackSpec.endpoint_inputs`, the readiness gate, the principal, its OAuth secret, one grant per
endpoint); the harness (`tests/lifecycle/harness.py`) plays each resource's Check / Diff /
Create / Update / Read / Delete. Like the engine (default parallelism: unbounded), every
resource whose dependencies are done is sent at once; the provider process's four workers are
the only limit.

Dependencies, as the program's Outputs make them:
  endpoint_i                 -> (none)
  principal                  -> (none)
  secret                     -> principal
  grant_i                    -> endpoint_i, principal
  gate                       -> every endpoint (their revisions)
Destroy walks the same graph backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from components.providers.endpoint import Endpoint, EndpointProvider
from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from components.providers.readiness import EndpointsReady, EndpointsReadyProvider
from components.serving import gate_endpoints
from components.spec import PROJECT, Stack, validate_config
from tests.lifecycle.harness import Engine

Task = tuple[tuple[str, ...], Callable[[], Any]]


def run_graph(tasks: dict[str, Task], t0: float) -> dict[str, float]:
    """Run every task as soon as its dependencies are done, all at once; seconds since t0 at
    which each finished. The first failure is raised once everything started has ended."""
    futures: dict[str, Future[float]] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        def run(key: str) -> float:
            deps, fn = tasks[key]
            for dep in deps:
                futures[dep].result()
            fn()
            return time.monotonic() - t0

        # Submitted in dependency order, so every dependency's future exists before it is read.
        for key in _ordered(tasks):
            futures[key] = pool.submit(run, key)
        done = {k: f.exception() for k, f in futures.items()}
    errors = [e for e in done.values() if e is not None]
    if errors:
        raise errors[0]
    return {k: f.result() for k, f in futures.items()}


def _ordered(tasks: dict[str, Task]) -> list[str]:
    seen: list[str] = []
    placed: set[str] = set()

    def visit(key: str) -> None:
        if key in placed:
            return
        for dep in tasks[key][0]:
            visit(dep)
        placed.add(key)
        seen.append(key)

    for key in tasks:
        visit(key)
    return seen


@dataclass
class StackRun:
    """The engine's view of one stack: its config, its state, and up / refresh / destroy."""

    engine: Engine
    config: dict[str, Any]
    stack_name: str = "bench"
    endpoint_provider: type = EndpointProvider
    gate: bool = True
    gate_provider: type = EndpointsReadyProvider
    ops: dict[str, str] = field(default_factory=dict)

    @property
    def stack(self) -> Stack:
        return validate_config(self.config, stack=self.stack_name,
                               file=f"stacks/Pulumi.{self.stack_name}.yaml")

    # ------------------------------------------------------------ the graph

    def _register(self, key: str, cls: type, provider: type, name: str,
                  inputs: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
        def go() -> None:
            step = self.engine.register(cls, provider, name, inputs())
            self.ops[key] = step.op
        return go

    def tasks(self) -> dict[str, Task]:
        stack = self.stack
        spec = stack.spec
        p = spec.principal
        out = self.engine.outputs
        sp_name = p.display_name
        tasks: dict[str, Task] = {}
        tasks["principal"] = ((), self._register(
            "principal", ServicePrincipal, ServicePrincipalProvider, sp_name,
            lambda: {"display_name": p.display_name, "external_id": f"{PROJECT}/{stack.name}",
                     "entitlements": list(p.entitlements)}))

        def secret_inputs() -> dict[str, Any]:
            sp = out(ServicePrincipal, sp_name)
            return {"service_principal_id": sp["principal_id"],
                    "application_id": sp["application_id"],
                    "lifetime_days": p.secret_lifetime_days,
                    "rotate_before_days": p.rotate_before_days, "scopes": p.scopes}

        tasks["secret"] = (("principal",), self._register(
            "secret", OAuthSecret, OAuthSecretProvider, f"{sp_name}-oauth", secret_inputs))
        names = []
        for endpoint in spec.endpoints:
            name = endpoint.name
            names.append(name)
            inputs = spec.endpoint_inputs(endpoint)
            tasks[f"endpoint:{name}"] = ((), self._register(
                f"endpoint:{name}", Endpoint, self.endpoint_provider, name,
                lambda inputs=inputs: inputs))

            def grant_inputs(name: str = name) -> dict[str, Any]:
                ep, sp = out(Endpoint, name), out(ServicePrincipal, sp_name)
                return {"endpoint_id": ep["endpoint_id"], "endpoint_name": name,
                        "service_principal_name": sp["application_id"],
                        "permission_level": "CAN_QUERY"}

            tasks[f"grant:{name}"] = ((f"endpoint:{name}", "principal"), self._register(
                f"grant:{name}", QueryGrant, QueryGrantProvider, f"{name}-can-query",
                grant_inputs))
        if self.gate:
            timeout = float(spec.readiness_timeout_minutes * 60)
            tasks["gate"] = (tuple(f"endpoint:{n}" for n in names), self._register(
                "gate", EndpointsReady, self.gate_provider, f"{stack.name}-endpoints-ready",
                lambda: {"endpoints": gate_endpoints(
                    [(n, out(Endpoint, n)["revision"], out(Endpoint, n)["endpoint_id"]) for n in names]),
                         "timeout_seconds": timeout}))
        return tasks

    def _resource(self, key: str) -> tuple[type, str]:
        spec = self.stack.spec
        kind, _, name = key.partition(":")
        sp_name = spec.principal.display_name
        return {
            "principal": (ServicePrincipal, sp_name),
            "secret": (OAuthSecret, f"{sp_name}-oauth"),
            "endpoint": (Endpoint, name),
            "grant": (QueryGrant, f"{name}-can-query"),
            "gate": (EndpointsReady, f"{self.stack_name}-endpoints-ready"),
        }[kind]

    # ------------------------------------------------------------ the engine's commands

    def up(self) -> dict[str, float]:
        """`pulumi up`: seconds since start at which each resource was done."""
        self.ops = {}
        t0 = time.monotonic()
        return run_graph(self.tasks(), t0)

    def refresh(self) -> dict[str, str]:
        """`pulumi refresh`: Read every resource in state, all at once."""
        tasks = self.tasks()
        result: dict[str, str] = {}

        def read(key: str) -> Callable[[], None]:
            cls, name = self._resource(key)

            def go() -> None:
                result[key] = "kept" if self.engine.refresh(cls, name) is not None else "gone"
            return go

        run_graph({k: ((), read(k)) for k in tasks
                   if self.engine.urn(*self._resource(k)) in self.engine.state}, time.monotonic())
        return result

    def destroy(self) -> dict[str, float]:
        """`pulumi destroy`: each resource after everything that depends on it."""
        tasks = self.tasks()
        dependents: dict[str, list[str]] = {k: [] for k in tasks}
        for key, (deps, _) in tasks.items():
            for dep in deps:
                dependents[dep].append(key)

        def delete(key: str) -> Callable[[], None]:
            cls, name = self._resource(key)
            return lambda: self.engine.destroy(cls, name)

        present = {k for k in tasks if self.engine.urn(*self._resource(k)) in self.engine.state}
        return run_graph({k: (tuple(d for d in dependents[k] if d in present), delete(k))
                          for k in present}, time.monotonic())
