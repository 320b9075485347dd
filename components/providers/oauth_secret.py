"""A workspace-level OAuth secret of the query principal (machine-to-machine credentials).

Inputs: service_principal_id (SCIM id), application_id, lifetime_days, rotate_before_days,
  scopes: [str] | None (None or [] = unrestricted).
Outputs: every input, plus secret_id, client_id (= application_id), client_secret (SECRET: the
  resource registers it in additional_secret_outputs), expire_time, status.

Diff rules (terraform's databricks_service_principal_secret, plus rotation):
  service_principal_id, application_id, lifetime_days, scopes (a set) -> replace
  expire_time within rotate_before_days of now, or status no longer ACTIVE -> replace
  rotate_before_days alone -> no change
Every replacement creates the new secret first and deletes the old one after
(delete_before_replace False), so Braintrust is never left without a working secret.
`read` finding the secret gone reports it deleted: the next `pulumi up` creates a new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pulumi
from databricks.sdk.errors import DatabricksError, NotFound
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.args import OAuthSecretArgs

from ._client import DatabricksProvider
from ._errors import api_error
from ._props import diff_result, inputs_only, is_unknown, whole

INPUT_KEYS = OAuthSecretArgs.keys()  # the inputs: components/args.py
OUTPUT_KEYS = ("secret_id", "client_id", "client_secret", "expire_time", "status")
SECRET_OUTPUTS = ["client_secret"]
REPLACE_KEYS = ("service_principal_id", "application_id", "lifetime_days", "scopes")
DAY = 86400


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """expire_time as the API gives it: RFC 3339 text, or epoch seconds / milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _canonical(props: dict[str, Any], key: str) -> Any:
    value = props.get(key)
    if key == "scopes":
        return sorted(set(value or []))  # None and [] both mean unrestricted
    return whole(value)


def due_for_rotation(olds: dict[str, Any], news: dict[str, Any], now: dt.datetime) -> bool:
    """True when the stored secret expires within rotate_before_days, or is not usable."""
    if olds.get("status") not in (None, "", "ACTIVE"):
        return True
    expires = parse_time(olds.get("expire_time"))
    if expires is None:
        return False  # unknown expiry: never rotate on a guess
    window = news.get("rotate_before_days")
    if is_unknown(window):
        return False
    return expires - now <= dt.timedelta(days=float(window or 0))


def diff_secret(olds: dict[str, Any], news: dict[str, Any],
                now: Callable[[], dt.datetime] = _now) -> DiffResult:
    replaces = [k for k in REPLACE_KEYS
                if is_unknown(news.get(k)) or _canonical(olds, k) != _canonical(news, k)]
    if due_for_rotation(olds, news, now()):
        replaces.append("expire_time")
    return diff_result(replaces, replaces, delete_before_replace=False)


class OAuthSecretProvider(DatabricksProvider):
    """create / list / delete through w.service_principal_secrets_proxy."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = inputs_only(news, INPUT_KEYS)
        failures = []
        lifetime, rotate = inputs.get("lifetime_days"), inputs.get("rotate_before_days", 0)
        if not is_unknown(lifetime) and (not isinstance(lifetime, int | float) or lifetime <= 0):
            failures.append(CheckFailure("lifetime_days", "must be a positive number of days"))
        elif (not is_unknown(rotate) and not is_unknown(lifetime)
              and (not isinstance(rotate, int | float) or not 0 <= rotate < lifetime)):
            failures.append(CheckFailure("rotate_before_days",
                                         "must be at least 0 and less than lifetime_days"))
        return CheckResult(inputs, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_secret(olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = inputs_only(props, INPUT_KEYS)
        sp_id = str(_canonical(inputs, "service_principal_id"))
        seconds = int(float(inputs["lifetime_days"]) * DAY)
        try:
            res = self.w.service_principal_secrets_proxy.create(
                sp_id, lifetime=f"{seconds}s", scopes=inputs.get("scopes") or None)
        except DatabricksError as exc:
            raise api_error("creating an OAuth secret", f"service principal {sp_id}", exc) from None
        outs = {**inputs, "secret_id": res.id, "client_id": inputs["application_id"],
                "client_secret": res.secret, "expire_time": res.expire_time,
                "status": res.status or "ACTIVE"}
        pulumi.log.info(f"OAuth secret {res.id} created for service principal {sp_id}")
        return CreateResult(str(res.id), outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        sp_id = str(_canonical(props, "service_principal_id"))
        try:
            found = [s for s in self.w.service_principal_secrets_proxy.list(sp_id) if s.id == id_]
        except NotFound:
            return ReadResult("", {})  # the principal is gone, and its secrets with it
        except DatabricksError as exc:
            raise api_error("listing OAuth secrets", f"service principal {sp_id}", exc) from None
        if not found:
            return ReadResult("", {})  # gone: dropped from state, the next up creates one
        outs = dict(props)
        outs.pop("__provider", None)
        outs["expire_time"] = found[0].expire_time or props.get("expire_time")
        outs["status"] = found[0].status or props.get("status")
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only non-replacing inputs (rotate_before_days) reach here: nothing remote changes.
        inputs = inputs_only(news, INPUT_KEYS)
        return UpdateResult({**inputs, **{k: olds.get(k) for k in OUTPUT_KEYS}})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        sp_id = str(_canonical(props, "service_principal_id"))
        try:
            self.w.service_principal_secrets_proxy.delete(sp_id, id_)
        except NotFound:
            return
        except DatabricksError as exc:
            raise api_error("deleting an OAuth secret", f"secret {id_} of service principal "
                            f"{sp_id}", exc) from None


class OAuthSecret(Resource, module="databricks-braintrust", name="OAuthSecret"):
    """The principal's OAuth secret; client_secret is always a secret output."""

    secret_id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]
    expire_time: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, resource_name: str, props: dict[str, Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(OAuthSecretProvider(), resource_name,
                         {**props, **{k: None for k in OUTPUT_KEYS}}, opts)
