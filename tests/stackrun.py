"""A whole stack through the real provider process: what `pulumi up | refresh | preview | destroy`
does with the resources `components/program.py` declares, walked the way the engine walks them.
The one engine-player of the repository: the reliability suite and the benchmarks both use it.

`StackRun` builds every resource's inputs from a validated `Stack` exactly as the components
do (spec.endpoint_inputs, the ownership marker, one grant per endpoint, the Braintrust record
from the secret's outputs) and registers them through `tests.lifecycle.harness.Engine`.
Dependencies, as the program's Outputs make them:
  endpoint_i   -> (none)
  principal    -> (none)
  secret       -> principal
  grant_i      -> endpoint_i, principal
  gate         -> every endpoint (their revisions and ids)
  AiSecret     -> gate, secret, every grant (the record waits for all of them)
Like the engine (default parallelism: unbounded), every resource whose dependencies are done is
sent at once; the provider process's four workers are the only limit. An error in one branch
does not stop the others; `up` raises the first error once everything that could run has run,
so state is what the engine would keep. `marks` says when each resource was done (seconds since
the command started), for the benchmarks. Destroy walks the same graph backwards.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.braintrust import build_provider_config, oauth_secret
from components.providers.ai_secret import AiSecret, AiSecretProvider, record_hash
from components.providers.endpoint import Endpoint, EndpointProvider
from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from components.providers.readiness import EndpointsReady, EndpointsReadyProvider
from components.serving import gate_endpoints
from components.spec import PROJECT, Stack, ownership_marker, validate_config, validate_document
from testing.provider import Engine, ProviderProcess, Step

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS: dict[type, type] = {
    Endpoint: EndpointProvider, EndpointsReady: EndpointsReadyProvider,
    ServicePrincipal: ServicePrincipalProvider, OAuthSecret: OAuthSecretProvider,
    QueryGrant: QueryGrantProvider, AiSecret: AiSecretProvider,
}
DIFF_NONE = 1  # provider_pb2.DiffResponse.DIFF_NONE
Resource = tuple[type, str]
Task = tuple[tuple[Hashable, ...], Callable[[], Any]]


def run_graph(tasks: dict[Hashable, Task], t0: float | None = None) -> dict[Hashable, float]:
    """Run every task as soon as its dependencies are done, all at once (as the engine does);
    seconds since `t0` at which each finished. A task whose dependency failed does not run. The
    first failure, in dependency order, is raised once everything started has ended."""
    t0 = time.monotonic() if t0 is None else t0
    futures: dict[Hashable, Future[float]] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        def run(key: Hashable) -> float:
            deps, fn = tasks[key]
            for dep in deps:
                futures[dep].result()  # raises the dependency's error: this task never starts
            fn()
            return time.monotonic() - t0

        # Submitted in dependency order, so every dependency's future exists before it is read.
        for key in _ordered(tasks):
            futures[key] = pool.submit(run, key)
    errors = [e for e in (f.exception() for f in futures.values()) if e is not None]
    if errors:
        raise errors[0]
    return {k: f.result() for k, f in futures.items()}


def _ordered(tasks: dict[Hashable, Task]) -> list[Hashable]:
    order: list[Hashable] = []
    placed: set[Hashable] = set()

    def visit(key: Hashable) -> None:
        if key in placed:
            return
        for dep in tasks[key][0]:
            visit(dep)
        placed.add(key)
        order.append(key)

    for key in tasks:
        visit(key)
    return order


def stack_document(base: str = "local", *, host: str, braintrust_url: str,
                   **config: Any) -> dict[str, Any]:
    """A stack file from `stacks/Pulumi.<base>.yaml` pointed at the emulator; `config` keys
    (without the project prefix) replace whole values; None removes one."""
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{base}.yaml").read_text())
    cfg = doc["config"]
    cfg[f"{PROJECT}:workspace"] = {"host": host}
    cfg[f"{PROJECT}:braintrust"] = {**cfg[f"{PROJECT}:braintrust"], "api_url": braintrust_url}
    for key, value in config.items():
        if value is None:
            cfg.pop(f"{PROJECT}:{key}", None)
        else:
            cfg[f"{PROJECT}:{key}"] = copy.deepcopy(value)
    return doc


def load(doc: dict[str, Any], stack: str = "local") -> Stack:
    return validate_document(doc, stack=stack, file=f"stacks/Pulumi.{stack}.yaml")


def load_config(config: dict[str, Any], stack: str) -> Stack:
    """A stack from its config keys (namespace stripped), as `load_stack()` validates them."""
    return validate_config(config, stack=stack, file=f"stacks/Pulumi.{stack}.yaml")


def configure(proc: ProviderProcess, emulator: Any) -> ProviderProcess:
    """Stack config as the engine sends it: the workspace host and the secret keys."""
    proc.configure({"workspace": {"host": emulator.url}, "databricks_token": emulator.admin_token,
                    "braintrust_api_key": emulator.braintrust_api_key},
                   secret_keys=("databricks_token", "braintrust_api_key"))
    return proc


def new_process(emulator: Any) -> ProviderProcess:
    return configure(ProviderProcess(env={"BRAINTRUST_API_KEY": "", "BRAINTRUST_BASE_URL": ""}),
                     emulator)


@dataclass
class StackRun:
    engine: Engine
    stack: Stack
    pat: str | None = None
    gate_timeout: float | None = None  # seconds; None: the stack's readiness_timeout_minutes
    gate: bool = True  # False: no readiness gate (the bench's "each create waits" design)
    providers: dict[type, type] = field(default_factory=dict)  # replaces PROVIDERS' entries
    steps: dict[str, Step] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)  # name -> s since the command began

    # ------------------------------------------------------------ names, as the program names them

    @property
    def spec(self) -> Any:
        return self.stack.spec

    @property
    def gate_name(self) -> str:
        return f"{self.stack.name}-endpoints-ready"

    @property
    def principal_name(self) -> str:
        return self.spec.principal.display_name

    @property
    def secret_name(self) -> str:
        return f"{self.principal_name}-oauth"

    def grant_name(self, endpoint: str) -> str:
        return f"{endpoint}-can-query"

    def resources(self) -> list[Resource]:
        """Every resource of the stack, in dependency order."""
        out: list[Resource] = [(Endpoint, e.name) for e in self.spec.endpoints]
        if self.gate:
            out.append((EndpointsReady, self.gate_name))
        out += [(ServicePrincipal, self.principal_name), (OAuthSecret, self.secret_name)]
        out += [(QueryGrant, self.grant_name(e.name)) for e in self.spec.endpoints]
        if self.spec.braintrust.publish:
            out.append((AiSecret, self.spec.braintrust.secret_name))
        return out

    def dependencies(self, cls: type, name: str) -> tuple[Resource, ...]:
        """What the resource's inputs wait for in the program (see the module docstring)."""
        endpoints = tuple((Endpoint, e.name) for e in self.spec.endpoints)
        principal = (ServicePrincipal, self.principal_name)
        if cls is OAuthSecret:
            return (principal,)
        if cls is QueryGrant:
            return ((Endpoint, name.removesuffix("-can-query")), principal)
        if cls is EndpointsReady:
            return endpoints
        if cls is AiSecret:
            gate = ((EndpointsReady, self.gate_name),) if self.gate else endpoints
            grants = tuple((QueryGrant, self.grant_name(e.name)) for e in self.spec.endpoints)
            return (*gate, (OAuthSecret, self.secret_name), *grants)
        return ()

    def provider(self, cls: type) -> type:
        return self.providers.get(cls, PROVIDERS[cls])

    def has(self, cls: type, name: str) -> bool:
        return self.engine.urn(cls, name) in self.engine.state

    def outputs(self, cls: type, name: str) -> dict[str, Any]:
        return self.engine.outputs(cls, name)

    # ------------------------------------------------------------ desired inputs, from state

    def endpoint_inputs(self, name: str) -> dict[str, Any]:
        endpoint = next(e for e in self.spec.endpoints if e.name == name)
        return self.stack.endpoint_inputs(endpoint)

    def gate_inputs(self) -> dict[str, Any]:
        eps = [self.outputs(Endpoint, e.name) for e in self.spec.endpoints]
        timeout = self.gate_timeout or float(self.spec.readiness_timeout_minutes * 60)
        return {"endpoints": gate_endpoints([(o["name"], o["revision"], o["endpoint_id"]) for o in eps]),
                "timeout_seconds": timeout}

    def principal_inputs(self) -> dict[str, Any]:
        p = self.spec.principal
        return {"display_name": p.display_name, "external_id": ownership_marker(self.stack.name),
                "entitlements": list(p.entitlements)}

    def secret_inputs(self) -> dict[str, Any]:
        sp, p = self.outputs(ServicePrincipal, self.principal_name), self.spec.principal
        return {"service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
                "lifetime_days": p.secret_lifetime_days, "rotate_before_days": p.rotate_before_days,
                "scopes": p.scopes}

    def grant_inputs(self, endpoint: str) -> dict[str, Any]:
        ep, sp = self.outputs(Endpoint, endpoint), self.outputs(ServicePrincipal, self.principal_name)
        return {"endpoint_id": ep["endpoint_id"], "endpoint_name": endpoint,
                "service_principal_name": sp["application_id"], "permission_level": "CAN_QUERY"}

    def record(self) -> dict[str, Any]:
        s, bt = self.spec, self.spec.braintrust
        if bt.auth_type == "pat":
            secret = self.pat
        else:
            sec = self.outputs(OAuthSecret, self.secret_name)
            secret = oauth_secret(sec["client_id"], sec["client_secret"])
        assert secret, "auth_type pat needs StackRun(pat=...)"
        return build_provider_config(
            name=bt.secret_name, api_base=s.workspace.host, auth_type=bt.auth_type, secret=secret,
            endpoints=[(e.name, e.resolved_flavor()) for e in s.endpoints],
            supports_streaming=bt.supports_streaming, org_name=bt.org_name).to_record()

    def ai_secret_inputs(self) -> dict[str, Any]:
        record, bt = self.record(), self.spec.braintrust
        return {"name": bt.secret_name, "record": record, "record_hash": record_hash(record),
                "api_url": bt.api_url, "org_name": bt.org_name}

    def desired(self, cls: type, name: str) -> dict[str, Any]:
        if cls is Endpoint:
            return self.endpoint_inputs(name)
        if cls is EndpointsReady:
            return self.gate_inputs()
        if cls is ServicePrincipal:
            return self.principal_inputs()
        if cls is OAuthSecret:
            return self.secret_inputs()
        if cls is QueryGrant:
            return self.grant_inputs(name.removesuffix("-can-query"))
        return self.ai_secret_inputs()

    # ------------------------------------------------------------ the engine's verbs

    def register(self, cls: type, name: str) -> Step:
        step = self.engine.register(cls, self.provider(cls), name, self.desired(cls, name))
        self.steps[name] = step
        return step

    def up(self) -> dict[str, Step]:
        """`pulumi up`: every resource registered as soon as its dependencies are; raises the
        first error at the end. `marks`: when each was done."""
        self.steps, self.marks = {}, {}
        t0 = time.monotonic()

        def register(cls: type, name: str) -> None:
            self.register(cls, name)
            self.marks[name] = time.monotonic() - t0

        run_graph({(cls, name): (self.dependencies(cls, name),
                                 lambda cls=cls, name=name: register(cls, name))
                   for cls, name in self.resources()}, t0)
        self._delete_undeclared()
        return self.steps

    def _delete_undeclared(self) -> None:
        """What the stack no longer declares is deleted at the end, dependents first."""
        declared = {self.engine.urn(c, n) for c, n in self.resources()}
        order = [QueryGrant, AiSecret, EndpointsReady, OAuthSecret, ServicePrincipal, Endpoint]
        for cls in order:
            for urn, st in list(self.engine.state.items()):
                if urn not in declared and st.type_name == cls.__name__:
                    self.engine.destroy(cls, urn.rsplit("::", 1)[1])

    def refresh(self) -> dict[str, bool]:
        """`pulumi refresh`: read every resource in state, all at once; name -> still there."""
        found: dict[str, bool] = {}

        def read(cls: type, name: str) -> None:
            found[name] = self.engine.refresh(cls, name) is not None

        run_graph({(cls, name): ((), lambda cls=cls, name=name: read(cls, name))
                   for cls, name in self.resources() if self.has(cls, name)})
        return found

    def preview(self) -> dict[str, Any]:
        """`pulumi preview` for resources in state whose inputs are computable: name -> diff."""
        diffs = {}
        for cls, name in self.resources():
            if not self.has(cls, name):
                continue
            try:
                inputs = self.desired(cls, name)
            except KeyError:  # a dependency is not in state: unknown in a real preview
                continue
            diffs[name] = self.engine.diff(cls, self.provider(cls), name, inputs)
        return diffs

    def changed(self) -> list[str]:
        """Names whose preview is not DIFF_NONE (plus those missing from state)."""
        diffs = self.preview()
        missing = [n for c, n in self.resources() if not self.has(c, n)]
        return sorted([n for n, d in diffs.items() if d.changes != DIFF_NONE] + missing)

    def destroy(self) -> dict[str, float]:
        """`pulumi destroy`: each resource in state after everything in state that depends on
        it, all at once otherwise; seconds since start at which each was deleted."""
        present = [(c, n) for c, n in self.resources() if self.has(c, n)]
        dependents: dict[Resource, list[Resource]] = {r: [] for r in present}
        for r in present:
            for dep in self.dependencies(*r):
                if dep in dependents:
                    dependents[dep].append(r)
        done = run_graph({r: (tuple(dependents[r]),
                              lambda r=r: self.engine.destroy(*r)) for r in present})
        return {name: t for (_, name), t in done.items()}  # type: ignore[misc]
