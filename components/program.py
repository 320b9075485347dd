"""The Pulumi program: the current stack's config through the same spec as the CLI, then the
components, then the exports. ``__main__.py`` only calls ``run()``."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

from components.braintrust_provider import BraintrustProvider
from components.principal import QueryPrincipal
from components.serving import EndpointsReady, ServingEndpoint
from components.spec import PROJECT, SECRET_KEYS, Stack, StackError, validate_config


def _decode(value: Any) -> Any:
    # Structured config reaches the program as JSON text; scalars stay text (pydantic's lax
    # mode reads "45" as 45 where a number is expected).
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def load_stack() -> Stack:
    """Validate the current stack's config; raise pulumi.RunError (no traceback) when invalid."""
    stack = pulumi.get_stack()
    file = f"stacks/Pulumi.{stack}.yaml"
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
        return validate_config(raw, stack=stack, file=file)
    except StackError as exc:
        raise pulumi.RunError(f"invalid stack configuration:\n{exc}") from None


def build(stack: Stack) -> dict[str, Any]:
    """Declare every resource of the stack; return what to export."""
    spec = stack.spec
    config = pulumi.Config(PROJECT)
    endpoints = [ServingEndpoint(stack, endpoint) for endpoint in spec.endpoints]
    ready = EndpointsReady(f"{stack.name}-endpoints-ready", endpoints, spec.readiness_timeout_minutes)
    principal = QueryPrincipal(stack.name, spec.principal, endpoints)
    pat = config.get_secret("braintrust_pat") if spec.braintrust.auth_type == "pat" else None
    provider = BraintrustProvider(stack, endpoints, principal, ready, pat)
    exports: dict[str, Any] = {
        "workspace_host": spec.workspace.host,
        "endpoints": {e.endpoint_name: e.url for e in endpoints},
        "endpoint_ids": {e.endpoint_name: e.endpoint_id for e in endpoints},
        "principal_application_id": principal.application_id,
        "principal_client_secret": principal.client_secret,
        "secret_expire_time": principal.secret_expire_time,
        "braintrust_provider": provider.record,
        "braintrust_provider_redacted": provider.redacted,
    }
    if provider.published_id is not None:
        exports["braintrust_ai_secret_id"] = provider.published_id
    return exports


def run() -> None:
    for name, value in build(load_stack()).items():
        pulumi.export(name, value)
