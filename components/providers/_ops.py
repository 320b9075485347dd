"""One provider operation's calls: the SDK's service classes over one BoundedApi (`_client`).

Every call of the operation, retries and pauses included, ends by the operation's deadline,
whatever the workspace answers: the SDK's own transport retries for 300 s and sleeps a whole
`Retry-After` first. And a POST whose answer was lost is not re-sent: databricks-sdk re-sends
every request after a connection error, POST included, which duplicates what a create makes
(a second principal of one name, a second secret nobody has the value of). BoundedApi raises
AnswerLost instead; the create lists what exists, compares it with what it listed before the
attempt, and adopts or removes what the attempt made before it sends again. Nothing depends on
a marker the workspace might not keep.
"""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.catalog import ModelVersionsAPI
from databricks.sdk.service.iam import ServicePrincipal, ServicePrincipalsAPI
from databricks.sdk.service.oauth2 import ServicePrincipalSecretsProxyAPI
from databricks.sdk.service.serving import ServingEndpointsAPI

from ._client import CALL_BUDGET, AnswerLost, BoundedApi, DeadlineExceeded
from ._errors import api_error
from ._propagation import PROPAGATION_TIMEOUT

__all__ = ["MAX_ATTEMPTS", "OPERATION_BUDGET", "READ_BUDGET", "AnswerLost", "DeadlineExceeded",
           "Ops", "scim_string"]

# Attempts at one create whose answers are lost before giving up: each attempt is preceded by
# a listing, so more attempts never make more objects, only more requests.
MAX_ATTEMPTS = 5
# A create, update or delete: its calls, and a wait for a principal not known yet.
OPERATION_BUDGET = PROPAGATION_TIMEOUT + CALL_BUDGET
READ_BUDGET = CALL_BUDGET


class Ops:
    """The services one operation calls, all over one deadline-bound transport."""

    def __init__(self, api: BoundedApi) -> None:
        self.api = api
        self.scim = ServicePrincipalsAPI(api)
        self.secrets = ServicePrincipalSecretsProxyAPI(api)
        self.serving = ServingEndpointsAPI(api)
        self.model_versions = ModelVersionsAPI(api)

    def left(self, cap: float) -> float:
        """`cap` seconds, or what is left of the operation's time if that is less."""
        return max(0.0, min(cap, self.api.remaining()))

    def listed_principal(self, *, scim_id: str | None = None,
                         application_id: str | None = None) -> ServicePrincipal | None:
        """The service principal SCIM lists with this application id (else this SCIM id), and
        the other one too when both are given: SCIM lists a principal at once after its create,
        while other APIs may not know it yet. None when it is not listed."""
        key = f"applicationId eq {scim_string(application_id)}" if application_id else \
            f"id eq {scim_string(scim_id or '')}"
        try:
            found = list(self.scim.list(filter=key))
        except (DatabricksError, DeadlineExceeded) as exc:
            raise api_error("listing service principals",
                            f"service principal {scim_id or application_id}", exc) from None
        return next((sp for sp in found
                     if (scim_id is None or str(sp.id) == scim_id)
                     and (application_id is None or sp.application_id == application_id)), None)


def scim_string(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 3.4.2.2: a JSON string): quotes and backslashes
    escaped, so a value can never end the literal and add a clause of its own."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
