"""The service principal Braintrust queries as, created through the workspace SCIM API.

Inputs: display_name, external_id (the project's marker, e.g. "databricks-braintrust/<stack>"),
  entitlements: [str] (default none).
Outputs: every input, plus principal_id (numeric SCIM id) and application_id (a UUID).

Diff rules: display_name, external_id, entitlements (a set) -> update in place through SCIM
PATCH; nothing forces a replacement (a new principal would need new grants and secret).
Create adopts an existing principal with the same display name only when it carries our
marker as externalId: a principal somebody else made is never taken over.
"""

from __future__ import annotations

from typing import Any

import pulumi
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.iam import ComplexValue, Patch, PatchOp, PatchSchema
from databricks.sdk.service.iam import ServicePrincipal as ScimPrincipal
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.args import ServicePrincipalArgs

from ._client import DatabricksProvider
from ._errors import ProviderError, api_error
from ._props import diff_result, inputs_only, is_unknown

INPUT_KEYS = ServicePrincipalArgs.keys()  # the inputs: components/args.py
OUTPUT_KEYS = ("principal_id", "application_id")
PATCH_SCHEMA = [PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]


def diff_principal(olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    changed = []
    for key in INPUT_KEYS:
        new = news.get(key)
        if is_unknown(new):
            changed.append(key)
        elif key == "entitlements":
            if set(olds.get(key) or []) != set(new or []):
                changed.append(key)
        elif olds.get(key) != new:
            changed.append(key)
    return diff_result(changed, [])


def _entitlements(sp: ScimPrincipal) -> set[str]:
    return {e.value for e in sp.entitlements or [] if e.value}


def _scim_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ServicePrincipalProvider(DatabricksProvider):
    """SCIM create / get / patch / delete of one service principal."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = inputs_only(news, INPUT_KEYS)
        inputs.setdefault("entitlements", [])
        failures = []
        for key in ("display_name", "external_id"):
            v = inputs.get(key)
            if not is_unknown(v) and (not isinstance(v, str) or not v.strip()):
                failures.append(CheckFailure(key, "must be a non-empty string"))
        return CheckResult(inputs, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_principal(olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = inputs_only(props, INPUT_KEYS)
        name, marker = inputs["display_name"], inputs["external_id"]
        obj = f"service principal {name!r}"
        sp = self._find_ours(name, marker)
        if sp is not None:
            # A run died after creating it: adopt it and bring it to the inputs.
            pulumi.log.info(f"{obj} already exists with marker {marker!r}: adopting it")
            current = {"display_name": sp.display_name, "external_id": sp.external_id,
                       "entitlements": sorted(_entitlements(sp) & set(inputs["entitlements"]))}
            self._patch(str(sp.id), current, inputs)
        else:
            try:
                sp = self.w.service_principals.create(
                    display_name=name,
                    external_id=marker,
                    active=True,
                    # No entitlements unless the stack asks: the principal only queries.
                    entitlements=[ComplexValue(value=e) for e in inputs["entitlements"]] or None,
                )
            except DatabricksError as exc:
                raise api_error("creating the service principal", obj, exc,
                                "the identity running `pulumi up` must be a workspace admin"
                                ) from None
        return CreateResult(str(sp.id), self._outs(inputs, sp))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            sp = self.w.service_principals.get(id_)
        except NotFound:
            return ReadResult("", {})
        except DatabricksError as exc:
            raise api_error("reading the service principal", f"service principal {id_}",
                            exc) from None
        inputs = inputs_only(props, INPUT_KEYS)
        inputs["display_name"] = sp.display_name
        inputs["external_id"] = sp.external_id
        # Only the entitlements we manage; someone else's are not drift.
        have = _entitlements(sp)
        inputs["entitlements"] = [e for e in inputs.get("entitlements") or [] if e in have]
        return ReadResult(id_, self._outs(inputs, sp))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        inputs = inputs_only(news, INPUT_KEYS)
        self._patch(id_, olds, inputs)
        outs = {**inputs, **{k: olds.get(k) for k in OUTPUT_KEYS}}
        return UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            self.w.service_principals.delete(id_)
        except NotFound:
            return
        except DatabricksError as exc:
            raise api_error("deleting the service principal",
                            f"service principal {props.get('display_name')!r} ({id_})",
                            exc) from None

    # ------------------------------------------------------------ helpers

    def _find_ours(self, name: str, marker: str) -> ScimPrincipal | None:
        try:
            found = list(self.w.service_principals.list(
                filter=f"displayName eq {_scim_string(name)}"))
        except DatabricksError as exc:
            raise api_error("listing service principals", f"service principal {name!r}",
                            exc) from None
        found = [sp for sp in found if sp.display_name == name]
        ours = [sp for sp in found if sp.external_id == marker]
        if ours:
            return sorted(ours, key=lambda sp: str(sp.id))[0]
        if found:
            raise ProviderError(
                "a service principal with this display name exists without this stack's marker",
                f"service principal {name!r} (id {found[0].id})",
                f"choose another principal.display_name in the stack file, or, if it is "
                f"this stack's, set its externalId to {marker!r}; it is never taken over",
            )
        return None

    def _patch(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> None:
        ops: list[Patch] = []
        if olds.get("display_name") != news["display_name"]:
            ops.append(Patch(op=PatchOp.REPLACE, path="displayName", value=news["display_name"]))
        if olds.get("external_id") != news["external_id"]:
            ops.append(Patch(op=PatchOp.REPLACE, path="externalId", value=news["external_id"]))
        old_e, new_e = set(olds.get("entitlements") or []), set(news.get("entitlements") or [])
        if new_e - old_e:
            ops.append(Patch(op=PatchOp.ADD, path="entitlements",
                             value=[{"value": e} for e in sorted(new_e - old_e)]))
        for e in sorted(old_e - new_e):  # only ones we set before
            ops.append(Patch(op=PatchOp.REMOVE, path=f'entitlements[value eq "{e}"]'))
        if not ops:
            return
        try:
            self.w.service_principals.patch(id_, operations=ops, schemas=PATCH_SCHEMA)
        except DatabricksError as exc:
            raise api_error("updating the service principal",
                            f"service principal {news['display_name']!r} ({id_})", exc) from None

    def _outs(self, inputs: dict[str, Any], sp: ScimPrincipal) -> dict[str, Any]:
        return {**inputs, "principal_id": str(sp.id), "application_id": sp.application_id}


class ServicePrincipal(Resource, module="databricks-braintrust", name="ServicePrincipal"):
    """The query principal; outputs principal_id (SCIM id) and application_id."""

    principal_id: pulumi.Output[str]
    application_id: pulumi.Output[str]

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ServicePrincipalProvider(), resource_name,
                         {**props, **{k: None for k in OUTPUT_KEYS}}, opts)
