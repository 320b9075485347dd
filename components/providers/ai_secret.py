"""The stack's Databricks AI provider record in Braintrust (an "AI secret"), published through
Braintrust's REST API when the stack says `braintrust.publish: true`.

Inputs: AiSecretArgs (components/args.py); record_hash is `record_hash(record)`, computed
  by the program with the function below. API key and base-URL precedence: see _braintrust.py.
Outputs: every input, plus secret_id (Braintrust's uuid), preview_secret (Braintrust's
  preview, meant to be non-revealing: kept secret all the same, and with every known secret
  removed, as a server may echo the secret there), updated_at.

Secrecy: the engine marks an output secret when the input of the same key held a secret
(pulumi `annotateSecrets` in pkg/resource/plugin/provider_plugin.go, applied because dynamic
providers answer `acceptSecrets: false`), so `record` stays secret in state; the resource
also registers additional_secret_outputs=["record", "preview_secret"] so it holds even if the input was not
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

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, ConfigureRequest, DiffResult

from components import transport
from components.args import AI_SECRET, AiSecretArgs, AiSecretOutputs
from components.braintrust import validate_record

from ._braintrust import BraintrustApi, BraintrustCredentials, base_url, credentials_from_config
from ._contract import DELETE_TRIES, ContractProvider, Stored, resource_class
from ._errors import ProviderError
from ._props import diff_result, is_unknown

State = Stored[AiSecretArgs, AiSecretOutputs]
REPLACE_FIRST_KEYS = ("name",)  # create-before-delete
# delete-before-replace: the contract's other replace keys (api_url, org_name)
REPLACE_AFTER_DELETE_KEYS = tuple(k for k in AI_SECRET.replace_keys if k not in REPLACE_FIRST_KEYS)
UPDATE_KEYS = ("record_hash", "record")
DRIFTED = "drifted"
MANAGED_FIELDS = ("name", "type", "metadata", "secret")  # every PUT sends each of them


def record_hash(record: dict[str, Any]) -> str:
    """The hash of the full record, secret included, so a rotation changes it: a one-way hash
    of high-entropy credentials, never the credentials. The component computes the input with
    this function. It is the full sha256 of the sorted JSON, the digest stacks already hold in
    state, so no stack publishes again just because the code changed."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _canonical(args: AiSecretArgs, key: str) -> Any:
    value = getattr(args, key)
    if is_unknown(value):
        return value
    if key == "api_url":
        return (value or "").rstrip("/")
    if key == "org_name":
        return value or None
    if key == "record":
        return json.dumps(value, sort_keys=True) if value is not None else None
    return value


def diff_ai_secret(old: AiSecretArgs, new: AiSecretArgs) -> DiffResult:
    def changed(keys: tuple[str, ...]) -> list[str]:
        return [k for k in keys
                if is_unknown(getattr(new, k)) or _canonical(old, k) != _canonical(new, k)]

    first, after = changed(REPLACE_FIRST_KEYS), changed(REPLACE_AFTER_DELETE_KEYS)
    replaces = first + after
    return diff_result(changed(UPDATE_KEYS) + replaces, replaces, delete_before_replace=bool(after))


def _publish_body(args: AiSecretArgs) -> dict[str, Any]:
    """The whole record, every field the project manages present and non-null: Braintrust's
    spec does not say whether a PUT clears an omitted `type` or `metadata`, or what
    `"secret": null` does, so neither an omission nor a null is ever sent."""
    body = dict(_record(args) or {})
    missing = [k for k in MANAGED_FIELDS if body.get(k) is None]
    if missing:  # check() refuses such a record first; never publish half of one
        raise ProviderError("the AI secret record is incomplete", f"AI secret {args.name!r}",
                            f"give it {', '.join(missing)}")
    if args.org_name and not body.get("org_name"):
        body["org_name"] = args.org_name
    return body


def _record(args: AiSecretArgs) -> dict[str, Any] | None:
    return dict(args.record) if isinstance(args.record, Mapping) else None


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

    def _api(self, args: AiSecretArgs) -> BraintrustApi:
        record = _record(args)
        if record is not None:
            # The record's secret (a PAT, or the OAuth JSON and its client secret) is removed
            # from any text Braintrust answers, in errors and in what is kept in state.
            transport.remember(*transport.credential_secrets(record.get("secret")))
        org = (record or {}).get("org_name") or args.org_name or None
        return BraintrustApi(base_url(args.api_url), self._creds or BraintrustCredentials(),
                             record=record, org_name=org if isinstance(org, str) else None)

    def validate(self, args: AiSecretArgs) -> list[CheckFailure]:
        failures: list[CheckFailure] = []
        name, record, api_url = args.name, args.record, args.api_url
        if not is_unknown(name) and (not isinstance(name, str) or not name):
            failures.append(CheckFailure("name", "must be the record's name, a non-empty string"))
        if not is_unknown(api_url) and api_url and not str(api_url).startswith(("https://", "http://")):
            failures.append(CheckFailure("api_url", "must be an http(s) URL such as https://api.braintrust.dev"))
        if is_unknown(record):
            return failures
        if not isinstance(record, Mapping):
            failures.append(CheckFailure("record", "must be the AI-secret record (an object)"))
            return failures
        _, problems = validate_record(dict(record))  # messages never echo the secret
        failures += [CheckFailure("record", p) for p in problems]
        if not is_unknown(name) and record.get("name") != name:
            failures.append(CheckFailure("name", f"{name!r} differs from the record's name {record.get('name')!r}"))
        return failures

    def compare(self, id_: str, old: State, new: AiSecretArgs) -> DiffResult:
        return diff_ai_secret(old.args, new)

    @staticmethod
    def _outs(remote: dict[str, Any]) -> AiSecretOutputs:
        remote = _echo_free(remote)
        return AiSecretOutputs(secret_id=str(remote["id"]), preview_secret=remote.get("preview_secret"),
                               updated_at=remote.get("updated_at"))

    def make(self, args: AiSecretArgs) -> tuple[str, State]:
        remote = self._api(args).upsert(_publish_body(args))
        pulumi.log.info(f"AI secret {args.name!r} published to Braintrust ({remote['id']})")
        return str(remote["id"]), Stored(args, self._outs(remote))

    def refresh(self, id_: str, old: State) -> State | None:
        args, secret_id = old.args, old.outs.secret_id or id_
        remote = self._api(args).get(secret_id, str(args.name))
        if remote is None:
            return None  # gone: dropped from state, the next up publishes it again
        remote = _echo_free(remote)
        outs = dataclasses.replace(old.outs, preview_secret=remote.get("preview_secret"),
                                   updated_at=remote.get("updated_at"))
        record = _record(args)
        if remote.get("name") != args.name:
            # Renamed out of band: the next up replaces it.
            args = dataclasses.replace(args, name=str(remote.get("name") or ""))
        elif record is not None and not _metadata_matches(record, remote):
            # Edited out of band: the next up publishes ours again.
            args = dataclasses.replace(args, record_hash=DRIFTED)
        return Stored(args, outs)

    def change(self, id_: str, old: State, new: AiSecretArgs) -> State:
        remote = self._api(new).upsert(_publish_body(new))
        if str(remote["id"]) != (old.outs.secret_id or id_):
            pulumi.log.warn(f"AI secret {new.name!r} was gone from Braintrust and is published "
                            f"again as {remote['id']}")
        pulumi.log.info(f"AI secret {new.name!r} published to Braintrust again ({remote['id']})")
        return Stored(new, self._outs(remote))

    def remove(self, id_: str, old: State) -> None:
        secret_id = old.outs.secret_id or id_
        api = self._api(old.args)
        # Read after write (issue 21): a delete acknowledged but never applied would leave the
        # record (and the principal's secret in it) in Braintrust with no state to find it.
        # A GET confirms it gone; the DELETE is sent again at most DELETE_TRIES times.
        for attempt in range(DELETE_TRIES):
            if not api.delete(secret_id, str(old.args.name)) and attempt == 0:
                pulumi.log.info(f"AI secret {old.args.name!r} ({secret_id}) was already gone")
                return
            if api.get(secret_id, str(old.args.name)) is None:
                return
        raise ProviderError(
            "AI secret not deleted", f"AI secret {old.args.name!r} ({secret_id})",
            f"Braintrust answered {DELETE_TRIES} deletes but still holds it; delete it in "
            "Braintrust (Settings, AI providers) or run `pulumi destroy` again")


def _echo_free(remote: dict[str, Any]) -> dict[str, Any]:
    """Braintrust's answer with every known secret removed from its text fields: a server that
    echoes the record's secret (as `preview_secret`, say) never puts it in state. The preview is
    a secret output besides (args.AI_SECRET), as anything echoed could be."""
    return {k: transport.redact(v) if isinstance(v, str) else v for k, v in remote.items()}


AiSecret = resource_class(AiSecretProvider)
