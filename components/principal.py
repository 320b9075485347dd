"""The service principal Braintrust queries as: its OAuth secret and one CAN_QUERY grant per
endpoint, and nothing else (no entitlements unless the stack asks)."""

from __future__ import annotations

import pulumi

from components.providers.grant import QueryGrant
from components.providers.oauth_secret import OAuthSecret
from components.providers.principal import ServicePrincipal
from components.serving import ServingEndpoint
from components.spec import Principal, ownership_marker

TOKEN = "databricks-braintrust:principal:QueryPrincipal"
# Logical names that do not follow display_name: renaming the principal in the stack file is
# then an in-place SCIM update, not a new principal, secret and grants (a URN change).
NAME = "query-principal"


class QueryPrincipal(pulumi.ComponentResource):
    application_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]

    def __init__(self, stack: str, principal: Principal, endpoints: list[ServingEndpoint],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, NAME, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sp = ServicePrincipal(
            NAME,
            {
                "display_name": principal.display_name,
                "external_id": ownership_marker(stack),
                "entitlements": list(principal.entitlements),
            },
            child,
        )
        secret = OAuthSecret(
            f"{NAME}-oauth",
            {
                "service_principal_id": sp.principal_id,
                "application_id": sp.application_id,
                "lifetime_days": principal.secret_lifetime_days,
                "rotate_before_days": principal.rotate_before_days,
                "scopes": principal.scopes,
                "principal_created_at": sp.created_at,
            },
            child,
        )
        self.grants = [
            QueryGrant(
                f"{endpoint.endpoint_name}-can-query",
                {
                    "endpoint_id": endpoint.endpoint_id,
                    "endpoint_name": endpoint.endpoint_name,
                    "service_principal_name": sp.application_id,
                    "permission_level": "CAN_QUERY",
                    "principal_created_at": sp.created_at,
                },
                child,
            )
            for endpoint in endpoints
        ]
        self.principal_id = sp.principal_id
        self.application_id = sp.application_id
        self.secret_expire_time = secret.expire_time
        self.client_secret = pulumi.Output.secret(secret.client_secret)
        self.register_outputs({
            "application_id": self.application_id,
            "client_secret": self.client_secret,
            "secret_expire_time": self.secret_expire_time,
        })
