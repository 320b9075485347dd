"""The Pulumi program: the current stack's config through the same spec as the CLI, the plan
(components/plan.py), each declaration turned into a resource, then the exports.
``__main__.py`` only calls ``run()``."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

from components.args import (
    AiSecretArgs,
    Args,
    BraintrustRecordArgs,
    EndpointArgs,
    OAuthSecretArgs,
    QueryGrantArgs,
    ReadinessArgs,
    Reference,
    RolloutRef,
    SecretConfig,
    SecretSweepArgs,
    ServicePrincipalArgs,
    rollout_id,
    substitute,
)
from components.braintrust_record import BraintrustRecord
from components.component import Component, output
from components.cost import check_budget, estimate
from components.plan import (
    PRINCIPAL_NAME,
    QUERY_PRINCIPAL,
    READINESS_GATE,
    SECRET_NAME,
    SERVING_ENDPOINT,
    Declaration,
    Plan,
    build_plan,
    endpoint_key,
    key_of,
)
from components.principal import QueryPrincipal
from components.providers.ai_secret import AiSecret
from components.providers.endpoint import Endpoint
from components.providers.grant import QueryGrant
from components.providers.oauth_secret import OAuthSecret, OAuthSecretSweep
from components.providers.principal import ServicePrincipal
from components.providers.readiness import EndpointsReady
from components.serving import ReadinessGate, ServingEndpoint
from components.spec import PROJECT, SECRET_KEYS, Stack, StackError, read_stack_file, validate_config

# The provider resource for each arguments class, and the component for each type token.
RESOURCES: dict[type[Args], Callable[[str, dict[str, Any], pulumi.ResourceOptions], pulumi.CustomResource]] = {
    EndpointArgs: Endpoint,
    ReadinessArgs: EndpointsReady,
    ServicePrincipalArgs: ServicePrincipal,
    OAuthSecretArgs: OAuthSecret,
    SecretSweepArgs: OAuthSecretSweep,
    QueryGrantArgs: QueryGrant,
    AiSecretArgs: AiSecret,
}
COMPONENTS: dict[str, Callable[[str, pulumi.ResourceOptions], Component]] = {
    SERVING_ENDPOINT: ServingEndpoint,
    READINESS_GATE: ReadinessGate,
    QUERY_PRINCIPAL: QueryPrincipal,
}


def _decode(value: Any) -> Any:
    # Structured config reaches the program as JSON text; scalars stay text (pydantic's lax
    # mode reads "45" as 45 where a number is expected).
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # the spec then refuses the text, naming the key
            return value
    return value


# The stack file as the user named it, when the engine knows it (the bundled engine runs any
# stack file's path; the Pulumi CLI always reads stacks/Pulumi.<stack>.yaml): messages name it.
STACK_FILE: ContextVar[str | None] = ContextVar("STACK_FILE", default=None)


def load_stack() -> Stack:
    """Validate the current stack's config; raise pulumi.RunError (no traceback) when invalid."""
    stack = pulumi.get_stack()
    file = STACK_FILE.get() or f"stacks/Pulumi.{stack}.yaml"
    keys = {k for k in {**get_config_env(), **CONFIG.get()} if k.startswith(f"{PROJECT}:")}
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        key = full_key.split(":", 1)[1]
        value = pulumi.runtime.config.get_config(full_key)
        if key in SECRET_KEYS and is_config_secret(full_key):
            raw[key] = {"secure": "<set>"}  # only presence matters here; the value stays an Output
        else:
            raw[key] = _decode(value)
    try:
        if Path(file).is_file():
            # What only the file's text shows (a repeated key, `010`, a YAML tag) never reaches
            # the program: Pulumi's reader has already resolved it.
            read_stack_file(file)
        return validate_config(raw, stack=stack, file=file)
    except StackError as exc:
        raise pulumi.RunError(f"invalid stack configuration:\n{exc}") from None


def _aliases(decl: Declaration, plan: Plan) -> list[pulumi.Alias] | None:
    aliases = []
    for former in decl.aliases:
        if former.type is not None:
            aliases.append(pulumi.Alias(type_=former.type))
        if former.parent_type is not None and decl.parent is not None:
            # Said explicitly, though the engine also derives it from the parent's own alias.
            parent = plan[decl.parent]
            aliases.append(pulumi.Alias(parent=pulumi.create_urn(parent.name, former.parent_type)))
    return aliases or None


def declare(plan: Plan) -> dict[str, pulumi.Resource]:
    """One resource per declaration, in plan order; references become the outputs they name."""
    made: dict[str, pulumi.Resource] = {}
    components: dict[str, Component] = {}
    config = pulumi.Config(PROJECT)

    def resolve(ref: Reference) -> Any:
        if isinstance(ref, SecretConfig):
            return config.require_secret(ref.key)
        if isinstance(ref, RolloutRef):
            revision, endpoint_id = (resolve(part) for part in ref.parts())
            return pulumi.Output.all(revision, endpoint_id).apply(lambda v: rollout_id(v[0], v[1]))
        return output(made[ref.key], ref.output)

    for decl in plan:
        opts = pulumi.ResourceOptions(parent=made[decl.parent] if decl.parent else None,
                                      aliases=_aliases(decl, plan))
        if decl.custom and decl.args is not None:
            made[decl.key] = RESOURCES[type(decl.args)](decl.name, substitute(decl.args.inputs(), resolve), opts)
        elif isinstance(decl.args, BraintrustRecordArgs):
            made[decl.key] = components[decl.key] = BraintrustRecord(
                decl.name, decl.args, resolve, plan.stack.file, opts)
        else:
            made[decl.key] = components[decl.key] = COMPONENTS[decl.type](decl.name, opts)
    for key, component in components.items():
        component.finish({d.key: made[d.key] for d in plan if d.parent == key})
    return made


def build(stack: Stack) -> dict[str, Any]:
    """Declare every resource of the stack; return what to export."""
    plan = build_plan(stack)
    cost = estimate(plan)
    # The budget, on the whole plan, before any resource is registered (so nothing is written).
    budget = check_budget(cost, stack.spec.max_dbu_per_hour)
    if budget.refused:
        raise pulumi.RunError(f"{stack.file}: max_dbu_per_hour: {budget.message}; nothing was changed")
    if budget.status == "unknown":
        pulumi.log.warn(f"{stack.file}: max_dbu_per_hour: {budget.message}")
    made = declare(plan)
    spec = stack.spec
    endpoints = {e.name: made[endpoint_key(e.name)] for e in spec.endpoints}
    sp = made[key_of(ServicePrincipalArgs.TYPE_NAME, PRINCIPAL_NAME)]
    secret = made[key_of(OAuthSecretArgs.TYPE_NAME, SECRET_NAME)]
    record = made[key_of(BraintrustRecordArgs.TYPE_NAME, spec.braintrust.secret_name)]
    exports: dict[str, Any] = {
        "workspace_host": spec.workspace.host,
        "endpoints": {name: output(e, "url") for name, e in endpoints.items()},
        "endpoint_ids": {name: output(e, "endpoint_id") for name, e in endpoints.items()},
        "principal_application_id": output(sp, "application_id"),
        "principal_client_secret": pulumi.Output.secret(output(secret, "client_secret")),
        # Which OAuth secret is the stack's live one: what to keep when the cap is reached.
        "principal_secret_id": output(secret, "secret_id"),
        "secret_expire_time": output(secret, "expire_time"),
        "braintrust_provider": output(record, "record"),
        "braintrust_provider_redacted": output(record, "redacted"),
        # The catalog's estimate (components/cost.py); None where a rate is unknown, never 0.
        "estimated_dbu_per_hour": {"min": cost.total("min"), "max": cost.total("max"),
                                   "unknown": list(cost.unknown)},
    }
    published = plan.of_type(AiSecretArgs)
    if published:
        exports["braintrust_ai_secret_id"] = output(made[published[0].key], "secret_id")
    return exports


def run() -> None:
    for name, value in build(load_stack()).items():
        pulumi.export(name, value)
