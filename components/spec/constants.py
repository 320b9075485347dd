"""Facts the whole project shares about a stack, each defined once.

Importing this module pulls in nothing else, so providers and the CLI may use it freely.
"""

from __future__ import annotations

import re
from typing import Literal

# The Pulumi project name: the stack file's key namespace and the ownership marker's prefix.
PROJECT = "databricks-braintrust"

# The tag key that marks an endpoint as a stack's (value: ``ownership_marker(stack)``). Reserved:
# a stack file may not set it.
MANAGED_BY_TAG = "managed-by"

# How an endpoint is served. A stack file says it by the key it writes (MODE_KEYS).
Mode = Literal["provisioned", "custom", "pay_per_token"]
MODES: tuple[Mode, ...] = ("provisioned", "custom", "pay_per_token")
MODE_KEYS: dict[str, Mode] = {"foundation_model": "provisioned", "model": "custom", "models": "custom",
                              "pay_per_token": "pay_per_token"}

# A serving endpoint's name (Databricks' rule), which Braintrust also uses as the model's name.
# Matched with fullmatch: `$` would let a trailing newline through.
ENDPOINT_NAME_CHARS = re.compile(r"[A-Za-z0-9_-]+")
ENDPOINT_NAME_MAX = 63


def is_endpoint_name(value: object) -> bool:
    return (isinstance(value, str) and len(value) <= ENDPOINT_NAME_MAX
            and ENDPOINT_NAME_CHARS.fullmatch(value) is not None)


# How long `pulumi up` waits for endpoints to roll out (the stack's readiness_timeout_minutes
# default), and how long an endpoint update waits for a rollout already in progress.
READINESS_TIMEOUT_MINUTES = 45

# Secret stack config: `pulumi config set --secret <project>:<key> ...`.
SECRET_KEYS = ("databricks_token", "braintrust_api_key", "braintrust_pat")

# The OAuth scope of the secret handed to Braintrust. Its proxy asks the token endpoint for
# `scope=all-apis`, and a token cannot exceed its secret's scopes, so anything narrower would
# leave Braintrust without a token. What the principal may do is bounded instead by having no
# entitlements and CAN_QUERY on exactly the stack's endpoints.
QUERY_SCOPES = ("all-apis",)

PRODUCTION_MAX_LIFETIME_DAYS = 90


def secret_hint(key: str) -> str:
    return f"pulumi config set --secret {PROJECT}:{key} <value>"


def ownership_marker(stack: str) -> str:
    """What marks an object as this stack's: the endpoints' managed-by tag and the principal's
    SCIM externalId. Adoption after a crash only ever takes an object carrying it."""
    return f"{PROJECT}/{stack}"
