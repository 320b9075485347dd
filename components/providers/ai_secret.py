"""The stack's Databricks AI provider record in Braintrust (an "AI secret"), published through
Braintrust's REST API when the stack says `braintrust.publish: true`.

Inputs: AiSecretArgs (components/args.py); record_hash is `record_hash(record)`, computed
  by the program with the function below. API key and base-URL precedence: see _braintrust.py.
Outputs: every input, plus secret_id (Braintrust's uuid), preview_secret (Braintrust's
  non-revealing preview), updated_at.

Secrecy: the engine marks an output secret when the input of the same key held a secret
(pulumi `annotateSecrets` in pkg/resource/plugin/provider_plugin.go, applied because dynamic
providers answer `acceptSecrets: false`), so `record` stays secret in state; the resource
also registers additional_secret_outputs=["record"] so it holds even if the input was not
marked. Nothing here logs or raises with the record's secret or the API key.

Diff rules:
  name -> replace, new record first, old one deleted after (ids differ by construction)
  api_url, org_name -> replace, old record deleted first: the same name on what may be the
    same server and organization would upsert onto the old id, which the delete would remove
  record_hash, record -> update in place: PUT /v1/ai_secret again (a rotated OAuth secret,
    endpoints added or removed, auth type changed)
  anything not yet known (preview) -> a change; `__provider` alone -> no change
A lost answer: create and update are PUT /v1/ai_secret, an upsert keyed by name, so the
transport's re-send lands on the same record (one record, one id); see _braintrust.py.
`read` (refresh) returns an empty id when the record is gone (404, or a 400/403 that a list by
id confirms: _braintrust.py), so the next `up` publishes it again; when the stored metadata no
longer matches what was published it clears record_hash in the outputs, so the next `up`
publishes it again. `delete` tolerates a record already gone, whichever status says so.
Every PUT sends name, type, metadata and secret (MANAGED_FIELDS), whatever a PUT does to an
omitted or null field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    UpdateResult,
)

from components.args import AI_SECRET, AiSecretArgs, AiSecretOutputs
from components.braintrust import validate_record

from ._braintrust import BraintrustApi, BraintrustCredentials, base_url, credentials_from_config
from ._contract import ContractProvider, resource_class
from ._errors import ProviderError
from ._props import diff_result, inputs_only, is_unknown

INPUT_KEYS = AI_SECRET.input_keys()
REPLACE_FIRST_KEYS = ("name",)  # create-before-delete
REPLACE_AFTER_DELETE_KEYS = ("api_url", "org_name")  # delete-before-replace
UPDATE_KEYS = ("record_hash", "record")
DRIFTED = "drifted"
MANAGED_FIELDS = ("name", "type", "metadata", "secret")  # every PUT sends each of them


def record_hash(record: dict[str, Any]) -> str:
    """The hash of the full record, secret included, so a rotation changes it: a one-way hash
    of high-entropy credentials, never the credentials. The component computes the input with
    this function. It is the full sha256 of the sorted JSON, the digest stacks already hold in
    state, so no stack publishes again just because the code changed."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _canonical(props: dict[str, Any], key: str) -> Any:
    value = props.get(key)
    if key == "api_url":
        return (value or "").rstrip("/")
    if key == "org_name":
        return value or None
    if key == "record":
        return json.dumps(value, sort_keys=True) if value is not None else None
    return value


def diff_ai_secret(olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    def changed(keys: tuple[str, ...]) -> list[str]:
        return [k for k in keys if is_unknown(news.get(k)) or _canonical(olds, k) != _canonical(news, k)]

    first, after = changed(REPLACE_FIRST_KEYS), changed(REPLACE_AFTER_DELETE_KEYS)
    replaces = first + after
    return diff_result(changed(UPDATE_KEYS) + replaces, replaces, delete_before_replace=bool(after))


def _publish_body(inputs: dict[str, Any]) -> dict[str, Any]:
    """The whole record, every field the project manages present and non-null: Braintrust's
    spec does not say whether a PUT clears an omitted `type` or `metadata`, or what
    `"secret": null` does, so neither an omission nor a null is ever sent."""
    body = dict(inputs["record"])
    missing = [k for k in MANAGED_FIELDS if body.get(k) is None]
    if missing:  # check() refuses such a record first; never publish half of one
        raise ProviderError("the AI secret record is incomplete", f"AI secret {inputs.get('name')!r}",
                            f"give it {', '.join(missing)}")
    if inputs.get("org_name") and not body.get("org_name"):
        body["org_name"] = inputs["org_name"]
    return body


def _metadata_matches(published: dict[str, Any], remote: dict[str, Any]) -> bool:
    """Only the keys we sent are compared: Braintrust may add its own."""
    if remote.get("type") != published.get("type"):
        return False
    ours, theirs = published.get("metadata") or {}, remote.get("metadata") or {}
    return all(theirs.get(k) == v for k, v in ours.items())


class AiSecretProvider(ContractProvider[AiSecretArgs, AiSecretOutputs]):
    """PUT / GET / DELETE /v1/ai_secret through Braintrust's REST API."""

    CONTRACT = AI_SECRET

    _creds: BraintrustCredentials | None = None  # set in configure, never pickled into state

    def configure(self, req: ConfigureRequest) -> None:
        self._creds = credentials_from_config(req)

    def _api(self, props: dict[str, Any]) -> BraintrustApi:
        record = props.get("record")
        record = record if isinstance(record, dict) else None
        org = (record or {}).get("org_name") or props.get("org_name") or None
        return BraintrustApi(base_url(props.get("api_url")), self._creds or BraintrustCredentials(),
                             record=record, org_name=org if isinstance(org, str) else None)

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = inputs_only(news, INPUT_KEYS)
        failures: list[CheckFailure] = []
        name, record, api_url = inputs.get("name"), inputs.get("record"), inputs.get("api_url")
        if not is_unknown(name) and (not isinstance(name, str) or not name):
            failures.append(CheckFailure("name", "must be the record's name, a non-empty string"))
        if not is_unknown(api_url) and api_url and not str(api_url).startswith(("https://", "http://")):
            failures.append(CheckFailure("api_url", "must be an http(s) URL such as https://api.braintrust.dev"))
        if is_unknown(record):
            return CheckResult(inputs, failures)
        if not isinstance(record, dict):
            failures.append(CheckFailure("record", "must be the AI-secret record (an object)"))
            return CheckResult(inputs, failures)
        _, problems = validate_record(record)  # messages never echo the secret
        failures += [CheckFailure("record", p) for p in problems]
        if not is_unknown(name) and record.get("name") != name:
            failures.append(CheckFailure("name", f"{name!r} differs from the record's name {record.get('name')!r}"))
        return CheckResult(inputs, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_ai_secret(olds, news)

    def _outs(self, inputs: dict[str, Any], remote: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, "secret_id": remote["id"], "preview_secret": remote.get("preview_secret"),
                "updated_at": remote.get("updated_at")}

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = inputs_only(props, INPUT_KEYS)
        remote = self._api(inputs).upsert(_publish_body(inputs))
        pulumi.log.info(f"AI secret {inputs['name']!r} published to Braintrust ({remote['id']})")
        return CreateResult(str(remote["id"]), self._outs(inputs, remote))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        secret_id = props.get("secret_id") or id_
        remote = self._api(props).get(secret_id, str(props.get("name")))
        if remote is None:
            return ReadResult("", {})  # gone: dropped from state, the next up publishes it again
        outs = {k: v for k, v in props.items() if k != "__provider"}
        outs.update(preview_secret=remote.get("preview_secret"), updated_at=remote.get("updated_at"))
        if remote.get("name") != props.get("name"):
            outs["name"] = remote.get("name")  # renamed out of band: the next up replaces it
        elif isinstance(props.get("record"), dict) and not _metadata_matches(props["record"], remote):
            outs["record_hash"] = DRIFTED  # edited out of band: the next up publishes ours again
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = inputs_only(news, INPUT_KEYS)
        remote = self._api(inputs).upsert(_publish_body(inputs))
        if str(remote["id"]) != (olds.get("secret_id") or id_):
            pulumi.log.warn(f"AI secret {inputs['name']!r} was gone from Braintrust and is published "
                            f"again as {remote['id']}")
        pulumi.log.info(f"AI secret {inputs['name']!r} published to Braintrust again ({remote['id']})")
        return UpdateResult(self._outs(inputs, remote))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        secret_id = props.get("secret_id") or id_
        if not self._api(props).delete(secret_id, str(props.get("name"))):
            pulumi.log.info(f"AI secret {props.get('name')!r} ({secret_id}) was already gone")


AiSecret = resource_class(AiSecretProvider)
