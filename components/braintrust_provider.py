"""The Braintrust AI-provider record for the stack, validated before it is exported or
published. It waits for the readiness gate and every grant: a record Braintrust receives
always points at endpoints that answer, with credentials that may query them."""

from __future__ import annotations

import pulumi
from pydantic import ValidationError

from components.braintrust import REDACTED, BraintrustProviderConfig, build_provider_config, oauth_secret, problems
from components.principal import QueryPrincipal
from components.providers.ai_secret import AiSecret, record_hash
from components.serving import EndpointsReady, ServingEndpoint
from components.spec import Stack

TOKEN = "databricks-braintrust:braintrust:BraintrustProvider"


class BraintrustProvider(pulumi.ComponentResource):
    record: pulumi.Output[dict]
    redacted: pulumi.Output[dict]

    def __init__(self, stack: Stack, endpoints: list[ServingEndpoint], principal: QueryPrincipal,
                 ready: EndpointsReady, pat: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        settings = stack.spec.braintrust
        super().__init__(TOKEN, settings.secret_name, None, opts)
        models = [(e.endpoint_name, e.flavor) for e in endpoints]

        def build(client_id: str, secret: str) -> BraintrustProviderConfig:
            try:
                return build_provider_config(
                    name=settings.secret_name,
                    api_base=stack.spec.workspace.host,
                    auth_type=settings.auth_type,
                    secret=secret if settings.auth_type == "pat" else oauth_secret(client_id, secret),
                    endpoints=models,
                    supports_streaming=settings.supports_streaming,
                    org_name=settings.org_name,
                )
            except ValidationError as exc:
                raise pulumi.RunError(
                    f"{stack.file}: the Braintrust provider record would be invalid, so nothing was "
                    "published: " + "; ".join(problems(exc))
                ) from None

        # Everything the record must wait for: every endpoint ready, every grant in place.
        gate = pulumi.Output.all(ready.ready, *[g.id for g in principal.grants])
        secret = pat if settings.auth_type == "pat" else principal.client_secret
        if secret is None:
            raise pulumi.RunError(f"{stack.file}: braintrust_pat: is required for auth_type pat")
        self.record = pulumi.Output.secret(
            pulumi.Output.all(principal.application_id, secret, gate).apply(
                lambda args: build(args[0], args[1]).to_record()
            )
        )
        # The review copy is built without the secret at all, so it is not a secret output.
        self.redacted = pulumi.Output.all(principal.application_id, gate).apply(
            lambda args: build(args[0], REDACTED).redacted()
        )
        self.published_id: pulumi.Output[str] | None = None
        if settings.publish:
            published = AiSecret(
                settings.secret_name,
                {
                    "name": settings.secret_name,
                    "record": self.record,
                    "record_hash": self.record.apply(record_hash),
                    "api_url": settings.api_url,
                    "org_name": settings.org_name,
                },
                pulumi.ResourceOptions(parent=self),
            )
            self.published_id = published.secret_id
        self.register_outputs({"redacted": self.redacted})
