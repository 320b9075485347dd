"""A stack file deployed into an emulator through the real program (testing.engine), with the
questions tests and benchmarks ask of it: what did `up` do to each resource, what does state
hold for a resource, is anything left to change.

Nothing here knows how the program names or wires its resources: names are looked up in what
the program registered (the principal is "the ServicePrincipal", a grant is "the QueryGrant
whose endpoint_name is X").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.engine import CommandResult, Registration, ResourceStep, StackEngine, Transform, type_token
from engine.props import strip_secrets
from engine.state import ResourceState
from testing.emulator import EmulatorClient
from testing.provider import ProviderProcess
from testing.stacks import ROOT, emulator_config


def _type(resource: type | str) -> str:
    return type_token(resource)


def provider_for(emulator: EmulatorClient, env: dict[str, str] | None = None) -> ProviderProcess:
    """A provider process configured for the emulator as the engine configures it for a stack
    (to share between commands where starting one per command would only cost time)."""
    proc = ProviderProcess(env={"BRAINTRUST_API_KEY": "", "BRAINTRUST_BASE_URL": "", **(env or {})})
    try:
        proc.configure({"workspace": {"host": emulator.url}, "databricks_token": emulator.admin_token,
                        "braintrust_api_key": emulator.braintrust_api_key},
                       secret_keys=("databricks_token", "braintrust_api_key"))
    except BaseException:
        proc.close()
        raise
    return proc


class Deployment:
    """`stacks/Pulumi.<base>.yaml` (or `stack_file`) pointed at `emulator`, as stack `stack`,
    with `config` over it (keys without the namespace; None removes a key), state in
    `state_file`."""

    def __init__(self, emulator: EmulatorClient, state_file: Path, *, base: str = "local",
                 stack: str | None = None, stack_file: Path | None = None,
                 proc: ProviderProcess | None = None, secrets: dict[str, str] | None = None,
                 transform: Transform | None = None, **config: Any) -> None:
        self.emulator = emulator
        self.stack_file = stack_file or ROOT / "stacks" / f"Pulumi.{base}.yaml"
        self.state_file = state_file
        self.proc = proc
        self.transform = transform
        removed = [k for k, v in config.items() if v is None]
        values, self.secrets = emulator_config(
            self.stack_file, emulator, **{k: v for k, v in config.items() if v is not None})
        self.secrets.update(secrets or {})
        self.config = values
        self.removed = removed
        self.stack = stack or self.stack_file.name.split(".")[1]
        self.last: CommandResult | None = None
        self.registrations: list[Registration] = []
        self.engine = self._engine()

    def _engine(self) -> StackEngine:
        engine = StackEngine(self.stack_file, self.state_file, config=self.config,
                             secrets=self.secrets, stack=self.stack, proc=self.proc,
                             transform=self.transform)
        for key in self.removed:
            engine.set_config(key, None)
        return engine

    def with_config(self, **config: Any) -> Deployment:
        """The same stack (same state, same provider process) with other config."""
        return Deployment(self.emulator, self.state_file, stack_file=self.stack_file,
                          stack=self.stack, proc=self.proc, secrets=self.secrets,
                          transform=self.transform, **{**self._overrides(), **config})

    def _overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items() if k not in ("workspace",)}

    # ------------------------------------------------------------ the commands

    def _run(self, command: str) -> CommandResult:
        self.engine = self._engine()  # state as the last command left it, on disk
        try:
            result: CommandResult = getattr(self.engine, command)()
        except Exception as exc:
            done = getattr(exc, "result", None)
            if done is not None and command in ("up", "preview"):
                self.registrations = done.registrations
            raise
        if command in ("up", "preview"):
            self.registrations = result.registrations
        self.last = result
        return result

    def up(self) -> dict[str, ResourceStep]:
        """`pulumi up`: name -> what was done (create, same, update, replace, delete)."""
        return self._run("up").by_name()

    def preview(self) -> dict[str, ResourceStep]:
        return self._run("preview").by_name()

    def refresh(self) -> dict[str, bool]:
        """`pulumi refresh`: name -> still there."""
        return {s.name: s.op == "refresh" for s in self._run("refresh").steps.values()}

    def destroy(self) -> CommandResult:
        return self._run("destroy")

    def changed(self) -> list[str]:
        """What a preview says changes for certain (inputs all known), plus what it would create."""
        result = self._run("preview")
        return sorted({*result.changed_for_certain(),
                       *(s.name for s in result.steps.values() if s.op == "create")})

    # ------------------------------------------------------------ state

    def _find(self, resource: type | str, name: str) -> ResourceState | None:
        token = _type(resource)
        for st in self.state().values():
            if st.custom and st.type == token and st.name == name:
                return st
        return None

    def state(self) -> dict[str, ResourceState]:
        return self._engine().state.resources

    def has(self, resource: type | str, name: str) -> bool:
        return self._find(resource, name) is not None

    def outputs(self, resource: type | str, name: str) -> dict[str, Any]:
        """A resource's outputs in state, secrets unwrapped (never print them)."""
        st = self._find(resource, name)
        if st is None:
            raise KeyError(f"{_type(resource)} {name} is not in state")
        return dict(strip_secrets(st.outputs))

    def forget(self, resource: type | str, name: str) -> None:
        """Drop a resource from state, as a crash that lost the answer to its create would."""
        engine = self._engine()
        st = next(s for s in engine.state.resources.values()
                  if s.custom and s.type == _type(resource) and s.name == name)
        del engine.state.resources[st.urn]
        engine.state.save(self.state_file)

    # ------------------------------------------------------------ names, as the program gave them

    def names(self, resource: type | str) -> list[str]:
        """The names of every custom resource of that type the program registered in the last
        up or preview (before any: in state)."""
        token = _type(resource)
        if self.registrations:
            return [r.name for r in self.registrations if r.custom and r.type == token]
        return [st.name for st in self.state().values() if st.custom and st.type == token]

    def name(self, resource: type | str) -> str:
        names = self.names(resource)
        if len(names) != 1:
            raise LookupError(f"{len(names)} resources of type {_type(resource)}: {names}")
        return names[0]

    def grant_name(self, endpoint: str) -> str:
        from components.providers.grant import QueryGrant

        token = _type(QueryGrant)
        for r in self.registrations:
            if r.custom and r.type == token and strip_secrets(r.inputs).get("endpoint_name") == endpoint:
                return r.name
        raise LookupError(f"no grant registered for endpoint {endpoint}")

    @property
    def principal_name(self) -> str:
        from components.providers.principal import ServicePrincipal

        return self.name(ServicePrincipal)

    @property
    def secret_name(self) -> str:
        from components.providers.oauth_secret import OAuthSecret

        return self.name(OAuthSecret)

    @property
    def gate_name(self) -> str:
        from components.providers.readiness import EndpointsReady

        return self.name(EndpointsReady)

    def endpoint_names(self) -> list[str]:
        from components.providers.endpoint import Endpoint

        return self.names(Endpoint)

    def resources(self) -> list[tuple[str, str]]:
        """(type token, name) of every custom resource the program registered."""
        return [(r.type, r.name) for r in self.registrations if r.custom]

    def export(self, name: str) -> Any:
        return strip_secrets(self._engine().state.outputs[name])
