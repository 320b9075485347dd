"""The stack file's schema: the only place that knows its shape.

A stack file is ``stacks/Pulumi.<stack>.yaml``; its keys live under the project's namespace,
``databricks-braintrust:<key>``. Everything downstream receives a validated ``Stack``. Every
rule that needs no network is checked here, once, by ``load_stack_file`` (the CLI and the
pull-request job) and by ``validate_config`` (the Pulumi program), with messages for the person
editing the YAML: the field, what is wrong, and how to fix it.

Modules, one concern each: ``constants`` (facts shared project-wide), ``fields`` (shared field
types), ``endpoints``, ``stack`` (the whole stack and its policy), ``problems`` and ``messages``
(what a refusal says), ``credentials`` (plain-text credential detection), ``loading`` (file and
YAML to a Stack), ``schema`` (JSON Schema for editors).
"""

from components.spec.across import check_across
from components.spec.constants import (
    MANAGED_BY_TAG,
    MODE_KEYS,
    MODES,
    PRODUCTION_MAX_LIFETIME_DAYS,
    PROJECT,
    QUERY_SCOPES,
    SECRET_KEYS,
    Mode,
    ownership_marker,
    secret_hint,
)
from components.spec.endpoints import (
    CustomModelEndpoint,
    EndpointBase,
    EndpointEntry,
    FoundationModelEndpoint,
    PayPerTokenEndpoint,
    RateLimit,
    Throughput,
    UnityCatalogModel,
    WorkloadSize,
    WorkloadType,
)
from components.spec.loading import (
    load_stack_file,
    read_stack_file,
    read_stack_text,
    stack_name_of,
    validate_config,
    validate_document,
)
from components.spec.problems import FieldError, Problem, StackError
from components.spec.schema import spec_json_schema
from components.spec.stack import (
    BraintrustSettings,
    PrincipalSettings,
    SecureValue,
    Stack,
    StackSpec,
    WorkspaceSettings,
    is_production,
)

__all__ = [
    "MANAGED_BY_TAG", "MODES", "MODE_KEYS", "PRODUCTION_MAX_LIFETIME_DAYS", "PROJECT", "QUERY_SCOPES",
    "SECRET_KEYS", "BraintrustSettings", "CustomModelEndpoint", "EndpointBase", "EndpointEntry", "FieldError",
    "FoundationModelEndpoint", "Mode", "PayPerTokenEndpoint", "PrincipalSettings", "Problem", "RateLimit",
    "SecureValue", "Stack", "StackError", "StackSpec", "Throughput", "UnityCatalogModel", "WorkspaceSettings",
    "WorkloadSize", "WorkloadType", "check_across", "is_production", "load_stack_file", "ownership_marker",
    "read_stack_file", "read_stack_text", "secret_hint", "spec_json_schema", "stack_name_of", "validate_config",
    "validate_document",
]
