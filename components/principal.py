"""The component that groups the service principal Braintrust queries as: the principal, its
OAuth secret and one CAN_QUERY grant per endpoint (arguments: components/plan.py)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.args import OAuthSecretArgs, ServicePrincipalArgs
from components.component import Component, output
from components.plan import PRINCIPAL_NAME, QUERY_PRINCIPAL, SECRET_NAME, key_of


class QueryPrincipal(Component):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(QUERY_PRINCIPAL, name, None, opts)

    def finish(self, children: Mapping[str, pulumi.Resource]) -> None:
        sp = children[key_of(ServicePrincipalArgs.TYPE_NAME, PRINCIPAL_NAME)]
        secret = children[key_of(OAuthSecretArgs.TYPE_NAME, SECRET_NAME)]
        self.register_outputs({
            "application_id": output(sp, "application_id"),
            "client_secret": pulumi.Output.secret(output(secret, "client_secret")),
            "secret_expire_time": output(secret, "expire_time"),
        })
