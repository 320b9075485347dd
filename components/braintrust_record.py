"""The component that builds the Braintrust AI-provider record for the stack, validated before
it is exported or published (and, with `publish: true`, holds the AiSecret that publishes it).

The record waits for the readiness gate and every grant (BraintrustRecordArgs.after): a record
Braintrust receives always points at endpoints that answer, with credentials that may query
them. Formerly the component `BraintrustProvider`, which it is not: it provides nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pydantic import ValidationError

from components.args import BraintrustRecordArgs, Reference
from components.braintrust import REDACTED, problems, record_config
from components.component import Component
from components.plan import BRAINTRUST_RECORD
from components.providers.ai_secret import record_hash


class BraintrustRecord(Component):
    record: pulumi.Output[dict[str, Any]]  # secret: the full record, credentials included
    record_hash: pulumi.Output[str]
    redacted: pulumi.Output[dict[str, Any]]  # the review copy, built without the secret at all

    def __init__(self, name: str, args: BraintrustRecordArgs, resolve: Callable[[Reference], Any], file: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BRAINTRUST_RECORD, name, None, opts)

        def build(client_id: str, secret: str, redact: bool = False) -> dict[str, Any]:
            try:
                config = record_config(args, client_id, secret)
            except ValidationError as exc:
                raise pulumi.RunError(
                    f"{file}: the Braintrust provider record would be invalid, so nothing was "
                    "published: " + "; ".join(problems(exc))
                ) from None
            return config.redacted() if redact else config.to_record()

        client_id = resolve(args.client_id)
        after = pulumi.Output.all(*[resolve(ref) for ref in args.after])
        self.record = pulumi.Output.secret(
            pulumi.Output.all(client_id, resolve(args.secret), after).apply(lambda v: build(v[0], v[1]))
        )
        self.record_hash = self.record.apply(record_hash)
        self.redacted = pulumi.Output.all(client_id, after).apply(lambda v: build(v[0], REDACTED, redact=True))

    def finish(self, children: Mapping[str, pulumi.Resource]) -> None:
        self.register_outputs({"redacted": self.redacted})
