"""The stack file's rules, one behaviour per test; the broken-file table covers messages."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import catalog
from components.plan import endpoint_args
from components.spec import (
    PROJECT,
    CustomModelEndpoint,
    FoundationModelEndpoint,
    PayPerTokenEndpoint,
    StackError,
    load_stack_file,
    spec_json_schema,
    validate_document,
)

ROOT = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())


def validate(mutate: Any = None, stack: str = "dev"):
    document = copy.deepcopy(DEV)
    if mutate:
        mutate(document["config"])
    return validate_document(document, stack=stack, file="Pulumi.x.yaml")


def problems(mutate: Any, stack: str = "dev") -> list[str]:
    with pytest.raises(StackError) as info:
        validate(mutate, stack)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def endpoints(config: dict) -> list[dict]:
    return config[f"{PROJECT}:endpoints"]


def test_endpoint_kinds_are_told_apart_by_their_key() -> None:
    kinds = [type(e) for e in validate().spec.endpoints]
    assert kinds == [FoundationModelEndpoint, FoundationModelEndpoint, CustomModelEndpoint, PayPerTokenEndpoint]


@pytest.mark.parametrize("name", ["a" * 63, "bt_x-1", "A9"])
def test_endpoint_names_up_to_63_letters_digits_dash_underscore_are_accepted(name: str) -> None:
    stack = validate(lambda c: endpoints(c)[0].update(name=name))
    assert stack.spec.endpoints[0].name == name


@pytest.mark.parametrize("name", ["a" * 64, "bt.x", "bt/x", "", "bt x"])
def test_endpoint_names_outside_the_rule_are_refused(name: str) -> None:
    assert any(p.startswith("endpoints[0].name") for p in problems(lambda c: endpoints(c)[0].update(name=name)))


def test_throughput_bounds_may_be_equal() -> None:
    stack = validate(lambda c: endpoints(c)[0]["throughput"].update(min=1240, max=1240))
    assert stack.spec.endpoints[0].throughput.min == 1240  # type: ignore[union-attr]


def test_entity_version_override_is_kept_as_text() -> None:
    # What reaches the served entity is tests/test_plan.py's.
    stack = validate(lambda c: endpoints(c)[0].update(entity_version=4))
    assert stack.spec.endpoints[0].entity_version == "4"  # type: ignore[union-attr]


@pytest.mark.parametrize(("index", "key", "value", "instead"), [
    (0, "version", "3", "write entity_version instead"),
    (2, "entity_version", "3", "write model: {name, version} instead"),
    (2, "throughput", {"min": 0, "max": 1240}, "write workload_size instead"),
])
def test_a_setting_under_another_kind_of_endpoints_key_names_this_kinds_key(
        index: int, key: str, value: Any, instead: str) -> None:
    # `version:` on a foundation_model endpoint is a pin written under the custom model's key:
    # the fix is entity_version, not removing the pin.
    found = problems(lambda c: endpoints(c)[index].update({key: value}))
    assert any(p.endswith(f".{key}: does not apply to " + ("a foundation_model" if index == 0 else "a custom model")
                          + f" endpoint ({instead})") for p in found), found


def test_custom_model_version_given_as_a_number_becomes_the_api_string() -> None:
    stack = validate(lambda c: endpoints(c)[2]["model"].update(version=3))
    assert stack.spec.endpoints[2].model.version == "3"  # type: ignore[union-attr]


def test_retired_pay_per_token_model_names_its_replacement() -> None:
    found = problems(lambda c: endpoints(c)[3].update(name="databricks-meta-llama-3-1-70b-instruct"))
    assert any("databricks-meta-llama-3-3-70b-instruct" in p for p in found)


def test_pay_per_token_name_that_is_a_model_key_gets_a_pointer() -> None:
    found = problems(lambda c: endpoints(c)[0].update(foundation_model="databricks-meta-llama-3-1-8b-instruct"))
    assert any("pay_per_token: true" in p for p in found)


def test_host_trailing_slash_is_stored_without_it() -> None:
    stack = validate(lambda c: c[f"{PROJECT}:workspace"].update(host="https://acme-dev.cloud.databricks.com/"))
    assert stack.spec.workspace.host == "https://acme-dev.cloud.databricks.com"


@pytest.mark.parametrize("host", [
    "https://adb-1234567890123456.7.azuredatabricks.net",
    "https://1234567890123456.7.gcp.databricks.com",
    "https://acme.cloud.databricks.com",
    "http://127.0.0.1:8787",
    "http://localhost:8787",
])
def test_workspace_hosts_of_every_cloud_and_loopback_are_accepted(host: str) -> None:
    assert validate(lambda c: c[f"{PROJECT}:workspace"].update(host=host)).spec.workspace.host == host


@pytest.mark.parametrize("host", [
    "http://10.0.0.5:8787", "https://acme.cloud.databricks.com?x=1", "ftp://acme.cloud.databricks.com",
    "acme.cloud.databricks.com", "https://user:pw@acme.cloud.databricks.com",
])
def test_workspace_hosts_that_are_not_workspaces_are_refused(host: str) -> None:
    assert any(p.startswith("workspace.host") for p in problems(lambda c: c[f"{PROJECT}:workspace"].update(host=host)))


@pytest.mark.parametrize(("lifetime", "rotate", "ok"), [(1, 0, True), (730, 729, True), (731, 14, False),
                                                        (0, 0, False), (30, 30, False), (30, 29, True)])
def test_secret_lifetime_and_rotation_window(lifetime: int, rotate: int, ok: bool) -> None:
    def mutate(c: dict) -> None:
        c[f"{PROJECT}:principal"].update(secret_lifetime_days=lifetime, rotate_before_days=rotate)
    if ok:
        assert validate(mutate).spec.principal.secret_lifetime_days == lifetime
    else:
        assert any(p.startswith("principal.") for p in problems(mutate))


def test_secure_values_count_as_present() -> None:
    def mutate(c: dict) -> None:
        c[f"{PROJECT}:braintrust"].update(auth_type="pat")
        c[f"{PROJECT}:braintrust_pat"] = {"secure": "v1:AAAAencrypted"}
    assert validate(mutate).spec.braintrust.auth_type == "pat"


def test_oauth_is_the_default_auth_type() -> None:
    def mutate(c: dict) -> None:
        c[f"{PROJECT}:braintrust"].pop("auth_type")
    assert validate(mutate).spec.braintrust.auth_type == "service_principal_oauth"


@pytest.mark.parametrize("stack", ["prod", "production", "prod-eu"])
def test_stacks_named_prod_get_the_production_policy(stack: str) -> None:
    found = problems(lambda c: c[f"{PROJECT}:tags"].pop("environment"), stack=stack)
    assert any(p.startswith("tags.owner") for p in found)


def test_policy_field_makes_any_stack_production() -> None:
    found = problems(lambda c: c.update({f"{PROJECT}:policy": "production"}), stack="dev")
    assert any(p.startswith("tags.owner") for p in found)


def test_production_allows_a_90_day_secret_and_an_owner() -> None:
    def mutate(c: dict) -> None:
        c[f"{PROJECT}:tags"]["owner"] = "ml-platform"
        c[f"{PROJECT}:principal"]["secret_lifetime_days"] = 90
    assert validate(mutate, stack="prod").production


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    def mutate(c: dict) -> None:
        endpoints(c)[0]["throughput"]["max"] = 0
        c[f"{PROJECT}:principal"]["secret_lifetime_days"] = 0
    found = problems(mutate)
    assert any(p.startswith("endpoints[bt-dev-llama-3-1-8b].throughput.max") for p in found)
    assert any(p.startswith("principal.secret_lifetime_days") for p in found)


def test_error_messages_never_echo_a_plaintext_credential() -> None:
    token = "dapi" + "0" * 32
    with pytest.raises(StackError) as info:
        validate(lambda c: c.update({f"{PROJECT}:databricks_token": token, f"{PROJECT}:bogus": token}))
    assert token not in str(info.value)


def test_workload_enums_match_the_sdk() -> None:
    from typing import get_args

    from databricks.sdk.service.serving import ServedModelInputWorkloadType, ServingModelWorkloadType

    from components.spec import WorkloadType
    sdk = {m.value for m in ServingModelWorkloadType} | {m.value for m in ServedModelInputWorkloadType}
    assert set(get_args(WorkloadType)) <= sdk


def test_catalog_covers_the_five_required_models_with_an_entry_each() -> None:
    required = {"meta-llama-3.1-70b-instruct", "meta-llama-3.1-8b-instruct", "mistral-7b-instruct",
                "mixtral-8x7b-instruct", "mpt-7b-instruct"}
    assert required <= set(catalog.BY_KEY)
    assert catalog.BY_KEY["mpt-7b-instruct"].provisioned is None
    assert catalog.BY_KEY["mpt-7b-instruct"].flavor == "completion"
    for key in required - {"mpt-7b-instruct"}:
        assert catalog.BY_KEY[key].provisioned.entity_name.startswith("system.ai.")


def test_schema_describes_every_field_and_namespaced_keys() -> None:
    schema = spec_json_schema()
    config = schema["properties"]["config"]
    assert f"{PROJECT}:endpoints" in config["properties"]
    assert {"required": [f"{PROJECT}:workspace"]} in [r for each in config["allOf"] for r in each["anyOf"]]
    defs = schema["$defs"]
    for name in ("PrincipalSettings", "BraintrustSettings", "FoundationModelEndpoint"):
        for field, prop in defs[name]["properties"].items():
            assert "description" in prop or "$ref" in prop or "allOf" in prop, (name, field)


def test_schema_accepts_the_committed_stacks() -> None:
    import jsonschema

    schema = spec_json_schema()
    for path in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_load_stack_file_names_the_stack_after_the_file() -> None:
    assert load_stack_file(ROOT / "stacks" / "Pulumi.staging.yaml").name == "staging"


def test_credential_shaped_values_in_any_field_are_flagged_at_their_field_and_never_echoed() -> None:
    token = "dapi" + "0123456789abcdef" * 2
    def mutate(c: dict) -> None:
        endpoints(c)[2]["model"].update(name=token, version=token)
        endpoints(c)[0].update(foundation_model=token)
    with pytest.raises(StackError) as info:
        validate(mutate)
    assert token not in str(info.value)
    paths = {p.path for p in info.value.problems}
    assert {"endpoints[bt-dev-churn-scorer].model.name", "endpoints[bt-dev-churn-scorer].model.version",
            "endpoints[bt-dev-llama-3-1-8b].foundation_model"} <= paths


def test_a_stack_file_nested_too_deeply_is_refused_with_a_message(tmp_path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  databricks-braintrust:tags: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(StackError) as info:
        load_stack_file(path)
    assert "nested too deeply" in str(info.value)


def test_the_catalog_confirms_a_chunk_only_for_the_version_a_source_gives_it() -> None:
    # Per (entity, version), each confirmed figure with its source; the rest are assumptions.
    confirmed = {(m.key, v.version): v.chunk for m in catalog.MODELS if m.provisioned
                 for v in m.provisioned.versions if v.chunk_confirmed}
    assert confirmed == {("meta-llama-3.1-8b-instruct", "2"): 970,
                         ("meta-llama-3.1-8b-instruct", "3"): 19000,
                         ("mistral-7b-instruct", "1"): 970}
    for m in catalog.MODELS:
        for v in m.provisioned.versions if m.provisioned else ():
            assert (v.chunk_source is None) == (not v.chunk_confirmed)
            assert v.dbus is None or v.dbus > 0
    facts = catalog.version_facts("system.ai.meta_llama_v3_1_8b_instruct", "3")
    assert facts is not None and (facts.chunk, facts.dbus) == (19000, 106) and facts.dbus_source
    assert catalog.version_facts("system.ai.meta_llama_v3_1_8b_instruct", "9") is None
    assumed = catalog.assumed_facts("system.ai.meta_llama_v3_1_8b_instruct", "9")
    assert assumed is not None and assumed.chunk == 1240 and not assumed.chunk_confirmed


def test_the_catalog_lists_todays_unit_models_with_their_entities_and_sources() -> None:
    units = {m.key: m.provisioned.entity_name for m in catalog.MODELS
             if m.provisioned and m.provisioned.capacity == "units"}
    assert units == {"meta-llama-4-maverick": "system.ai.llama-4-maverick",
                     "gpt-oss-120b": "system.ai.gpt-oss-120b", "gpt-oss-20b": "system.ai.gpt-oss-20b",
                     "gemma-3-12b": "system.ai.gemma-3-12b-it"}
    for key in units:
        model = catalog.BY_KEY[key]
        assert model.flavor == "chat" and model.provisioned.entity_source
        assert model.provisioned.throughput_chunk is None  # no published unit step
        assert model.pay_per_token is not None and model.pay_per_token.source
    assert "databricks-meta-llama-3-1-405b-instruct" not in catalog.pay_per_token_endpoints()


@pytest.mark.parametrize("path", sorted((ROOT / "stacks").glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_shipped_stacks_buy_whole_chunks_of_every_model(path: Path) -> None:
    # The emulator seeds the catalog's chunks, so these values also converge there.
    stack = load_stack_file(path)
    assert stack.warnings == ()
    for endpoint in stack.spec.endpoints:
        if isinstance(endpoint, FoundationModelEndpoint):
            chunk = endpoint.model().provisioned.chunk_for(endpoint.entity_version)[0]
            assert endpoint.throughput is not None and chunk
            assert endpoint.throughput.min % chunk == 0 and endpoint.throughput.max % chunk == 0


def test_the_stack_name_is_not_kept_on_the_spec() -> None:
    # The same spec serves any stack name: the ownership marker comes from the name passed in.
    stack = validate()
    assert not hasattr(stack.spec, "_stack")
    other = dataclasses.replace(stack, name="other")
    assert endpoint_args(other, other.spec.endpoints[0]).tags["managed-by"] == f"{PROJECT}/other"
    assert endpoint_args(stack, stack.spec.endpoints[0]).tags["managed-by"] == f"{PROJECT}/dev"


def _with_lifecycle(monkeypatch: pytest.MonkeyPatch, key: str, mode: str, life: catalog.Lifecycle) -> None:
    model = catalog.BY_KEY[key]
    if mode == "provisioned":
        assert model.provisioned is not None
        model = dataclasses.replace(model, provisioned=dataclasses.replace(model.provisioned, lifecycle=life))
    else:
        assert model.pay_per_token is not None
        model = dataclasses.replace(model, pay_per_token=dataclasses.replace(model.pay_per_token, lifecycle=life))
    monkeypatch.setitem(catalog.BY_KEY, key, model)
    if model.pay_per_token is not None:
        monkeypatch.setitem(catalog.BY_PAY_PER_TOKEN_ENDPOINT, model.pay_per_token.endpoint_name, model)


def _two_8b_endpoints(c: dict[str, Any]) -> None:
    second = copy.deepcopy(c["databricks-braintrust:endpoints"][0])
    second["name"] = "bt-dev-llama-second"
    c["databricks-braintrust:endpoints"].append(second)


@pytest.mark.parametrize(("state", "retires_on", "words"), [
    ("legacy", None, ("is legacy", "will announce its retirement date")),
    ("deprecated", "2027-01-31", ("is deprecated", "retires it on 2027-01-31")),
])
def test_a_legacy_or_deprecated_model_warns_once_with_its_date_and_replacement(
        monkeypatch: pytest.MonkeyPatch, state: str, retires_on: str | None, words: tuple[str, ...]) -> None:
    _with_lifecycle(monkeypatch, "meta-llama-3.1-8b-instruct", "provisioned",
                    catalog.Lifecycle(state, retires_on, "meta-llama-4-maverick"))  # type: ignore[arg-type]
    stack = validate(_two_8b_endpoints)
    found = [str(w) for w in stack.warnings]
    assert len(found) == 1, found  # once per model, though two endpoints serve it
    assert "endpoints[bt-dev-llama-3-1-8b].foundation_model: warning: Meta Llama 3.1 8B Instruct" in found[0]
    assert all(w in found[0] for w in words) and "move to foundation_model: meta-llama-4-maverick" in found[0]
    assert "30 days" in found[0]


def test_a_deprecated_pay_per_token_endpoint_warns_and_a_retired_one_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = "databricks-meta-llama-3-3-70b-instruct"
    _with_lifecycle(monkeypatch, "meta-llama-3.3-70b-instruct", "pay_per_token",
                    catalog.Lifecycle("deprecated", "2027-02-28", "databricks-llama-4-maverick"))
    found = [str(w) for w in validate().warnings]
    assert any(f"endpoints[{name}].name: warning: the pay-per-token endpoint {name} is deprecated" in w
               and "2027-02-28" in w and "name: databricks-llama-4-maverick" in w for w in found), found
    _with_lifecycle(monkeypatch, "meta-llama-3.3-70b-instruct", "pay_per_token",
                    catalog.Lifecycle("retired", replacement="databricks-llama-4-maverick"))
    assert any("retired" in p and "databricks-llama-4-maverick" in p for p in problems(None))


def test_a_retired_provisioned_model_is_refused_with_its_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_lifecycle(monkeypatch, "meta-llama-3.1-8b-instruct", "provisioned",
                    catalog.Lifecycle("retired", replacement="meta-llama-4-maverick"))
    assert any("retired Meta Llama 3.1 8B Instruct" in p and "meta-llama-4-maverick" in p
               for p in problems(None))


@pytest.mark.parametrize(("source", "refused"), [("a published figure", True), (None, False)])
def test_a_unit_step_refuses_only_where_a_source_confirms_it_for_the_pinned_version(
        monkeypatch: pytest.MonkeyPatch, source: str | None, refused: bool) -> None:
    # None is published today: this is the rule the catalog applies once one is.
    model = catalog.BY_KEY["meta-llama-4-maverick"]
    assert model.provisioned is not None
    stepped = dataclasses.replace(model, provisioned=dataclasses.replace(
        model.provisioned, versions=(catalog.VersionFacts("1", 50, source),)))
    monkeypatch.setitem(catalog.BY_KEY, "meta-llama-4-maverick", stepped)

    def units(c: dict[str, Any]) -> None:
        entry = endpoints(c)[0]
        del entry["throughput"]
        entry.update(foundation_model="meta-llama-4-maverick", model_units=30, entity_version="1")

    if refused:
        found = problems(units)
        assert any("model_units" in p and "30 is not a multiple of 50 units" in p and "version 1" in p
                   and "use 50" in p for p in found), found
    else:
        warnings = [str(w) for w in validate(units).warnings]
        assert any("model_units: warning: 30 is not a multiple of 50 units" in w for w in warnings), warnings
