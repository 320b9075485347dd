"""What a change to a serving endpoint does: the one table `diff`, preview and the provider read.

A change to an endpoint the stack created is one of:
- ``update``: made in place (tags, AI Gateway, notifications, served entities and traffic);
- ``replace``: a new endpoint, then the old one deleted (``REPLACE_KEYS``);
- ``refuse``: no API makes it and replacing the endpoint would break what is serving, so the
  provider's Check refuses it and `pulumi preview` fails saying what to do (``IMMUTABLE_KEYS``,
  and the capacity switches marked ``refuse`` in ``SWITCHES``).

Plain dicts in (the provider's props, or a plan's inputs), no pulumi, no databricks-sdk: `diff`
imports this on a bare runner.

Sources:
- Terraform's databricks_model_serving forces replacement only for ``name``,
  ``route_optimized`` and the auto-capture table location (serving/resource_model_serving.go).
- databricks/cli ``bundle/direct/dresources/resources.yml``: ``description`` is immutable ("can't
  be updated via API"); ``budget_policy_id`` has no update API and GET never returns it (only
  ``effective_budget_policy_id``). The pinned databricks-sdk (0.162.0) has no call for either.
- Served entities change in place through ``PUT /serving-endpoints/{name}/config``
  (``update_config``), whatever they serve: a tokens-per-second foundation model and a custom
  model are two shapes of one served entity, so switching between them is an update.
- Whether an endpoint made through ``/serving-endpoints/pt`` (model units) takes a ``/config``
  update, or one made through ``/serving-endpoints`` takes a ``/pt/{name}/config`` update, no
  public source says. The emulator plays both answers (``--pt-config-switch``); the rule below
  is correct under each: such a switch is refused in place, and a new name does it with no
  downtime (the new endpoint serves before the old one goes, and Braintrust moves first).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

Rule = Literal["update", "replace", "refuse"]
Capacity = Literal["pay_per_token", "tokens_per_second", "units", "custom"]

# Changing one of these makes a new endpoint. A new name is created first and the old endpoint
# deleted at the end (the Braintrust record names the new one before the old one goes); the same
# name with another route_optimized must be deleted first (names are unique in a workspace).
REPLACE_KEYS: tuple[str, ...] = ("name", "route_optimized")
# Set at create only: a change is refused, never a replacement (see the sources above).
IMMUTABLE_KEYS: tuple[str, ...] = ("description", "budget_policy_id")

# (from, to) -> rule, for a change of what an endpoint serves. Pairs not listed are updates.
SWITCHES: dict[tuple[Capacity, Capacity], Rule] = {
    # Databricks' shared endpoints are referenced, never created: switching to or from one is
    # a different endpoint.
    **{(a, b): "replace" for a in ("tokens_per_second", "units", "custom")
       for b in ("pay_per_token",)},
    **{("pay_per_token", b): "replace" for b in ("tokens_per_second", "units", "custom")},
    # In place through /config (an update, no downtime).
    ("tokens_per_second", "custom"): "update",
    ("custom", "tokens_per_second"): "update",
    # Unknown whether the other API takes the update: refused in place, done by a new name.
    ("units", "tokens_per_second"): "refuse",
    ("units", "custom"): "refuse",
    ("tokens_per_second", "units"): "refuse",
    ("custom", "units"): "refuse",
}


Props = Mapping[str, Any] | Any  # wire props, or the typed EndpointArgs


def _get(obj: Any, key: str) -> Any:
    """A field of wire props (a dict) or of a typed arguments object alike."""
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def capacity(props: Props) -> Capacity | None:
    """How an endpoint is served: pay-per-token, model units (a served entity with
    ``provisioned_model_units``), tokens per second (min/max throughput) or a custom model.
    None while not known (a preview's unknown value)."""
    mode = _get(props, "mode")
    if mode == "pay_per_token":
        return "pay_per_token"
    entities = _get(props, "served_entities")
    if not isinstance(mode, str) or not isinstance(entities, list | tuple):
        return None
    if mode == "units" or any(_get(e, "provisioned_model_units") for e in entities):
        return "units"
    if mode == "provisioned":
        return "tokens_per_second"
    return "custom" if mode == "custom" else None


def switch_rule(olds: Props, news: Props) -> Rule:
    before, after = capacity(olds), capacity(news)
    if before is None or after is None or before == after:
        return "update"
    return SWITCHES.get((before, after), "update")


def _setting(props: Props, key: str) -> str:
    value = _get(props, key)
    return value if isinstance(value, str) else ""


def _undo(olds: Props, key: str) -> str:
    old = _setting(olds, key)
    return f"put back {old!r}" if old else f"remove {key}: the endpoint was created without it"


def refusals(olds: Props, news: Props) -> list[tuple[str, str]]:
    """(field, message with the fix) for each change no API makes and no replacement should:
    what the provider's Check refuses and `diff` flags. ``olds`` empty: a create, nothing to
    refuse."""
    if not olds or _get(olds, "name") != _get(news, "name"):
        return []  # a create, or a new name: everything is set at create
    if "pay_per_token" in (_get(olds, "mode"), _get(news, "mode")):
        return []
    found = []
    for key in IMMUTABLE_KEYS:
        if not isinstance(_get(news, key), str | None):
            continue  # unknown in a preview
        if _setting(olds, key) != _setting(news, key):
            found.append((key, (
                f"cannot change on an existing endpoint: Databricks sets {key} only when the endpoint "
                "is created and has no API that changes it, and replacing the endpoint would stop it "
                f"serving ({_undo(olds, key)}, or give the endpoint a new name: the new one is "
                "created with it, serves, and Braintrust moves to it before the old one is deleted)")))
    if switch_rule(olds, news) == "refuse":
        found.append(("served_entities", (
            f"switching endpoint {_get(news, 'name')} between {capacity(olds)} and {capacity(news)} "
            "in place is not known to work (Databricks serves model units through its own API) "
            "and replacing it would stop it serving (give the endpoint a new name: the new one is "
            "created and serving before the old one is deleted, and Braintrust moves to it first)")))
    return found


def comparable(value: Any) -> Any:
    """An endpoint input as `diff` compares it: every list as a set (its items sorted), as the
    provider's diff does (served entities by name, traffic by entity, rate limits, notification
    addresses), so a list written in another order is no change there either."""
    if isinstance(value, Mapping):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [comparable(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=repr))
    return value


def replace_keys(olds: Props, news: Props, changed: list[str]) -> list[str]:
    """Which of the ``changed`` inputs force a new endpoint."""
    keys = [k for k in changed if k in REPLACE_KEYS]
    if "mode" in changed and switch_rule(olds, news) == "replace":
        keys.append("mode")
    return keys
