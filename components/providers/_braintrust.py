"""Braintrust's REST API for AI secrets, as the AiSecret provider uses it (components.transport).

Where the API key comes from, first found wins:
  1. the secret stack config `databricks-braintrust:braintrust_api_key`, read in `configure`;
  2. the environment variable BRAINTRUST_API_KEY of the provider process.
Where the base URL comes from: the resource's `api_url` input (the stack file's
`braintrust.api_url`, reviewed in the pull request, so what a review approved is where the
record goes). BRAINTRUST_BASE_URL, which Braintrust's own clients read, is used only when
the input is empty: it never silently redirects a reviewed stack to another server.

Calls have a bounded timeout and are retried only on 429, 5xx (honouring Retry-After, capped)
and a lost connection, at most RETRIES times. Re-sending is safe for every call made here:
the create is a PUT, Braintrust's upsert by name, so a PUT sent again after its answer was lost
updates the same record (a POST would return the existing record unmodified); GET reads; a
DELETE sent again finds the record gone, which `delete` takes as done.

A record that is gone. Braintrust's OpenAPI spec (braintrustdata/braintrust-openapi
openapi/spec.json) lists 200, 400, 401, 403, 429 and 500 for every operation and never 404, so
what it answers for an unknown or deleted id is not stated: 404, 400 ("not found" as a bad
request) or 403 ("does not exist or you lack permission") are all plausible. 404 means gone.
400 and 403 also mean a malformed request or a key without access, so they mean gone only when
Braintrust confirms it: a list by that id (`GET /v1/ai_secret?ids=<id>`, with the stack's
org_name) answers 200 without the record. If the list is refused too (a key without access) or
holds the record (it exists; the refusal was real), the original error stands. AI secrets are
organization-level settings with no per-record permission, so a key that may list them sees
every one; a key of another organization, which would see an empty list, is the one case this
cannot tell from a deleted record (docs/reliability.md).

Errors name the call, the record and Braintrust's message; they never carry the API key or
the record's secret: Braintrust's message may echo the request, so the key, and the secret of
every record the client was given or sends (the PAT, or the OAuth JSON and the client_secret
in it), are removed from it before it is cut to one line.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from pulumi.dynamic import ConfigureRequest

from components import transport
from components.spec.constants import PROJECT

from ._errors import ProviderError

TIMEOUT = 30.0
RETRIES = 4
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
GONE = 404  # the one status that says "gone" by itself
MAYBE_GONE = frozenset({400, 403})  # "gone" only once a list by id confirms it
KEY_HINT = ("set the Braintrust API key with `pulumi config set --secret braintrust_api_key <key>` "
            "or the environment variable BRAINTRUST_API_KEY")


@dataclass(frozen=True)
class BraintrustCredentials:
    api_key: str | None = field(default=None, repr=False)  # never printed


def credentials_from_config(req: ConfigureRequest) -> BraintrustCredentials:
    key = req.config.get(f"{PROJECT}:braintrust_api_key") or os.environ.get("BRAINTRUST_API_KEY") or None
    transport.remember(key)
    return BraintrustCredentials(api_key=key)


def base_url(api_url: str | None) -> str:
    url = api_url or os.environ.get("BRAINTRUST_BASE_URL") or "https://api.braintrust.dev"
    return url.rstrip("/")


class BraintrustApiError(ProviderError):
    def __init__(self, what: str, obj: str, todo: str, status: int) -> None:
        super().__init__(what, obj, todo)
        self.status = status


@dataclass
class BraintrustApi:
    """One base URL and one API key; every method returns the parsed record or raises."""

    url: str
    creds: BraintrustCredentials = field(repr=False)
    timeout: float = TIMEOUT
    retries: int = RETRIES
    record: dict[str, Any] | None = field(default=None, repr=False)  # its secret is never echoed
    org_name: str | None = None  # the stack's organization, for the list that confirms a gone record

    def _secrets(self, body: Any) -> transport.Secrets:
        secrets = transport.Secrets()
        secrets.add(self.creds.api_key)
        for record in (self.record, body):
            if isinstance(record, dict):
                secrets.add_credential(record.get("secret"))
        return secrets

    def _call(self, method: str, path: str, what: str, obj: str, body: Any = None) -> transport.Result:
        if not self.creds.api_key:
            raise BraintrustApiError(f"{what} failed", obj, f"no Braintrust API key: {KEY_HINT}", 0)
        result = transport.request(
            method, f"{self.url}{path}", json_body=body, timeout=self.timeout, retries=self.retries,
            retry_statuses=RETRY_STATUSES,
            headers={"Authorization": f"Bearer {self.creds.api_key}"})
        if result.ok:
            # Every secret removed from the whole answer, nested values and the id included,
            # before any caller logs it, returns it as the resource id or keeps it in state.
            result.body = _scrubbed(result.body, self._secrets(body))
            return result
        # never echo the key or the record's secret, whatever the server said
        summary = transport.error_summary(result, self._secrets(body))
        where = f"{method} {self.url}{path.split('?')[0]}"
        tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        if result.status == 0:
            todo = f"Braintrust did not answer{tries} ({summary}); check api_url and the network"
        elif result.status in transport.REDIRECTS:
            todo = f"{summary}; set braintrust.api_url in the stack file to Braintrust's API URL itself"
        elif result.status in (401, 403):
            todo = f"Braintrust refused the API key (HTTP {result.status}: {summary}); {KEY_HINT}"
        else:
            todo = f"Braintrust answered HTTP {result.status}{tries}: {summary}"
        raise BraintrustApiError(f"{what} failed", f"{obj}, {where}", todo, result.status)

    def upsert(self, record: dict[str, Any]) -> dict[str, Any]:
        """PUT /v1/ai_secret: create or replace by name."""
        res = self._call("PUT", "/v1/ai_secret", "publishing the AI secret",
                         f"AI secret {record.get('name')!r}", body=record)
        return _record(res)

    def get(self, secret_id: str, name: str) -> dict[str, Any] | None:
        """GET /v1/ai_secret/{id}; None when it is gone (whichever status says so)."""
        try:
            res = self._call("GET", f"/v1/ai_secret/{urllib.parse.quote(secret_id)}",
                             "reading the AI secret", f"AI secret {name!r} ({secret_id})")
        except BraintrustApiError as exc:
            if self._gone(exc, secret_id, name):
                return None
            raise
        return _record(res)

    def delete(self, secret_id: str, name: str) -> bool:
        """DELETE /v1/ai_secret/{id}; False when it was already gone (whichever status says so)."""
        try:
            self._call("DELETE", f"/v1/ai_secret/{urllib.parse.quote(secret_id)}",
                       "deleting the AI secret", f"AI secret {name!r} ({secret_id})")
        except BraintrustApiError as exc:
            if self._gone(exc, secret_id, name):
                return False
            raise
        return True

    def listed_ids(self, secret_ids: list[str], name: str) -> set[str] | None:
        """GET /v1/ai_secret?ids=...: the ids of those records Braintrust lists (lower-cased),
        or None when it refuses the list or answers something that is not one."""
        params: list[tuple[str, str]] = [("ids", i) for i in secret_ids]
        if self.org_name:
            params.append(("org_name", self.org_name))
        try:
            res = self._call("GET", f"/v1/ai_secret?{urllib.parse.urlencode(params)}",
                             "listing the AI secret", f"AI secret {name!r}")
        except BraintrustApiError:
            return None
        objects = res.body.get("objects") if isinstance(res.body, dict) else None
        if not isinstance(objects, list):
            return None
        return {str(o.get("id")).lower() for o in objects if isinstance(o, dict)}

    def _gone(self, exc: BraintrustApiError, secret_id: str, name: str) -> bool:
        """Whether the refusal means the record is gone (see the module's docstring)."""
        if exc.status == GONE:
            return True
        if exc.status not in MAYBE_GONE:
            return False
        listed = self.listed_ids([secret_id], name)
        return listed is not None and secret_id.lower() not in listed


def _scrubbed(value: Any, secrets: transport.Secrets) -> Any:
    if isinstance(value, str):
        return secrets.scrub(value)
    if isinstance(value, dict):
        return {secrets.scrub(k) if isinstance(k, str) else k: _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    return value


def _record(res: transport.Result) -> dict[str, Any]:
    body = res.body
    if not isinstance(body, dict) or not body.get("id"):
        raise ProviderError("Braintrust answered without a record", "AI secret",
                            "check api_url points at Braintrust's API (e.g. https://api.braintrust.dev)")
    return body
