"""The AI Gateway, traffic splits, endpoint settings and model switches through the real program
(testing.engine on Pulumi's runtime, the real provider process) against the emulator, read back
with databricks-sdk as an outside client would:
- every setting lands in the SDK's shapes; a second `up` writes nothing;
- each one-field change the API makes in place is exactly one write;
- while an endpoint switches between a foundation and a custom model, traffic shifts between
  versions and an endpoint is renamed, a probe queries every model the published Braintrust
  record lists, as Braintrust would: no query fails;
- a description change is refused at preview, naming the field, before anything is written.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from databricks.sdk.service.serving import (
    AiGatewayGuardrailParameters,
    AiGatewayGuardrailPiiBehavior,
    AiGatewayGuardrailPiiBehaviorBehavior,
    AiGatewayGuardrails,
    AiGatewayInferenceTableConfig,
    AiGatewayRateLimit,
    AiGatewayRateLimitKey,
    AiGatewayRateLimitRenewalPeriod,
    AiGatewayUsageTrackingConfig,
    EmailNotifications,
)

from testing.emulator import EmulatorClient
from testing.engine import EngineError, StackEngine
from testing.stacks import PROJECT, ROOT, emulator_config

LOCAL = ROOT / "stacks" / "Pulumi.local.yaml"
PT = "bt-local-llama-3-1-8b"
CUSTOM = "bt-local-churn-scorer"
CHURN = "main.ml.churn_scorer"
CHAT_MODEL = "main.ml.support_bot"
MINUTE = AiGatewayRateLimitRenewalPeriod.MINUTE


def models(emulator: EmulatorClient) -> None:
    """Two completion versions of the churn scorer (traffic moves between them) and a custom
    chat model (the foundation-model endpoint switches to it and keeps its flavor)."""
    for version in ("3", "4"):
        emulator.admin("POST", "models", {"name": CHURN, "version": version, "task": "llm/v1/completions"})
    emulator.admin("POST", "models", {"name": CHAT_MODEL, "version": "1", "task": "llm/v1/chat"})


def governed(**pt_over: Any) -> dict[str, Any]:
    """The local stack with every setting on its foundation-model endpoint and a traffic split
    on its custom one; the pay-per-token reference left out (it takes none of these)."""
    doc = yaml.safe_load(LOCAL.read_text())
    cfg = doc["config"]
    pt = {"name": PT, "foundation_model": "meta-llama-3.1-8b-instruct", "throughput": {"min": 0, "max": 1240},
          "usage_tracking": True, "description": "Llama for Braintrust", "budget_policy_id": "policy-7",
          "rate_limits": [{"key": "endpoint", "calls": 600}, {"key": "user", "tokens": 20000},
                          {"key": "user_group", "principal": "data-scientists", "calls": 100}],
          "guardrails": {"input": {"safety": True, "pii": "BLOCK"}, "output": {"pii": "MASK"}},
          "inference_table": {"catalog_name": "main", "schema_name": "ai_logs", "table_name_prefix": "bt"},
          "email_notifications": {"on_update_success": ["ml@example.com"],
                                  "on_update_failure": ["oncall@example.com"]}}
    pt.update(pt_over)
    custom = {"name": CUSTOM, "flavor": "completion",
              "models": [{"name": CHURN, "version": "3", "scale_to_zero": True, "traffic": 90},
                         {"name": CHURN, "version": "4", "scale_to_zero": True, "traffic": 10}]}
    cfg[f"{PROJECT}:endpoints"] = [pt, custom]
    return doc


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "Pulumi.local.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def writes(emulator: EmulatorClient) -> list[tuple[str, str]]:
    """The requests that change the workspace or Braintrust (a token mint is not a change)."""
    return [(r["method"], r["path"]) for r in emulator.requests()
            if r["method"] != "GET" and not r["path"].startswith("/oidc/")]


class Run:
    def __init__(self, emulator: EmulatorClient, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.state = tmp_path / "state.json"
        self.config, self.secrets = emulator_config(LOCAL, emulator)

    def engine(self, doc: dict[str, Any]) -> StackEngine:
        return StackEngine(write(self.tmp_path, doc), self.state, config=self.config, secrets=self.secrets)

    def up(self, doc: dict[str, Any]) -> dict[str, str]:
        return dict(self.engine(doc).up().ops())


@pytest.fixture
def run(emulator: EmulatorClient, tmp_path: Path) -> Run:
    models(emulator)
    return Run(emulator, tmp_path)


def test_every_setting_lands_in_the_sdk_shapes_and_a_second_up_writes_nothing(
        run: Run, emulator: EmulatorClient) -> None:
    ops = run.up(governed())
    assert ops[PT] == "create" and ops[CUSTOM] == "create"
    w = emulator.workspace_client()
    ep = w.serving_endpoints.get(PT)
    gw = ep.ai_gateway
    assert gw is not None
    assert sorted(gw.rate_limits or [], key=lambda r: r.as_dict()["key"]) == [
        AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.ENDPOINT, calls=600),
        AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.USER, tokens=20000),
        AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.USER_GROUP,
                           principal="data-scientists", calls=100)]
    assert gw.guardrails == AiGatewayGuardrails(
        input=AiGatewayGuardrailParameters(safety=True, pii=AiGatewayGuardrailPiiBehavior(
            AiGatewayGuardrailPiiBehaviorBehavior.BLOCK)),
        output=AiGatewayGuardrailParameters(safety=False, pii=AiGatewayGuardrailPiiBehavior(
            AiGatewayGuardrailPiiBehaviorBehavior.MASK)))
    assert gw.inference_table_config == AiGatewayInferenceTableConfig(
        catalog_name="main", schema_name="ai_logs", table_name_prefix="bt", enabled=True)
    assert gw.usage_tracking_config == AiGatewayUsageTrackingConfig(enabled=True)
    assert ep.description == "Llama for Braintrust"
    assert ep.email_notifications == EmailNotifications(on_update_success=["ml@example.com"],
                                                        on_update_failure=["oncall@example.com"])
    raw = w.api_client.do("GET", f"/api/2.0/serving-endpoints/{PT}")
    assert isinstance(raw, dict) and raw["effective_budget_policy_id"] == "policy-7"
    churn = w.serving_endpoints.get(CUSTOM)
    cfg = churn.pending_config or churn.config
    assert cfg is not None and cfg.traffic_config is not None
    assert {(r.served_entity_name, r.traffic_percentage) for r in cfg.traffic_config.routes or []} == {
        ("churn_scorer-3", 90), ("churn_scorer-4", 10)}

    emulator.clear_requests()
    again = run.up(governed())
    assert set(again.values()) == {"same"}
    assert writes(emulator) == []


ONE_FIELD_CHANGES = [
    ("a rate limit", {"rate_limits": [{"key": "endpoint", "calls": 300}, {"key": "user", "tokens": 20000},
                                      {"key": "user_group", "principal": "data-scientists", "calls": 100}]},
     "/ai-gateway"),
    ("a limit of 0 for one group", {"rate_limits": [{"key": "endpoint", "calls": 600},
                                                    {"key": "user", "tokens": 20000},
                                                    {"key": "user_group", "principal": "data-scientists",
                                                     "calls": 0}]}, "/ai-gateway"),
    ("a guardrail", {"guardrails": {"input": {"safety": False, "pii": "BLOCK"}, "output": {"pii": "MASK"}}},
     "/ai-gateway"),
    ("usage tracking", {"usage_tracking": False}, "/ai-gateway"),
    ("the inference table turned off", {"inference_table": None}, "/ai-gateway"),
    ("notifications", {"email_notifications": {"on_update_success": ["ml@example.com", "lead@example.com"],
                                               "on_update_failure": ["oncall@example.com"]}}, "/notifications"),
    ("notifications cleared", {"email_notifications": None}, "/notifications"),
    ("throughput", {"throughput": {"min": 0, "max": 2480}}, "/config"),
]


def test_each_one_field_change_is_one_write(run: Run, emulator: EmulatorClient) -> None:
    """The changes one after another (each against the one before), so one deployment serves
    them all; then an `up` with nothing to do writes nothing."""
    doc = governed()
    run.up(doc)
    for what, change, path in ONE_FIELD_CHANGES:
        emulator.clear_requests()
        doc = copy.deepcopy(doc)
        pt = doc["config"][f"{PROJECT}:endpoints"][0]
        for key, value in change.items():
            if value is None:
                pt.pop(key, None)
            else:
                pt[key] = value
        ops = run.up(doc)
        assert ops[PT] == "update" and ops[CUSTOM] == "same", (what, ops)
        done = writes(emulator)
        assert len(done) == 1 and done[0][1] == f"/api/2.0/serving-endpoints/{PT}{path}", (what, done)
    emulator.clear_requests()
    assert set(run.up(doc).values()) == {"same"} and writes(emulator) == []


def test_moving_the_inference_table_disables_it_first_then_enables_it_elsewhere(
        run: Run, emulator: EmulatorClient) -> None:
    run.up(governed())
    emulator.clear_requests()
    run.up(governed(inference_table={"catalog_name": "main", "schema_name": "audit"}))
    assert writes(emulator) == [("PUT", f"/api/2.0/serving-endpoints/{PT}/ai-gateway")] * 2
    gw = emulator.workspace_client().serving_endpoints.get(PT).ai_gateway
    assert gw is not None and gw.inference_table_config is not None
    assert (gw.inference_table_config.schema_name, gw.inference_table_config.enabled) == ("audit", True)


def test_a_description_change_is_refused_at_preview_naming_the_field_and_nothing_is_written(
        run: Run, emulator: EmulatorClient) -> None:
    run.up(governed())
    emulator.clear_requests()
    with pytest.raises(EngineError) as info:
        run.engine(governed(description="another description")).preview()
    text = str(info.value)
    assert "description" in text and "cannot change on an existing endpoint" in text
    assert "give the endpoint a new name" in text
    assert writes(emulator) == []
    assert emulator.workspace_client().serving_endpoints.get(PT).description == "Llama for Braintrust"


# ---------------------------------------------------------------------------------------------
# No query fails while endpoints switch, shift traffic and are renamed


class Probe:
    """Queries, over and over, every model the Braintrust record published in the emulator's
    Braintrust lists, with the record's own credentials, as Braintrust's proxy does (an OAuth
    token from {api_base}/oidc/v1/token, then {api_base}/serving-endpoints/<model>/invocations)."""

    def __init__(self, emulator: EmulatorClient, record: dict[str, Any]) -> None:
        self.emulator = emulator
        self.record = record
        self.failures: list[str] = []
        self.queries: dict[str, int] = {}
        self._stop = threading.Event()

    def _token(self) -> str:
        meta = self.record["metadata"]
        oauth = json.loads(self.record["secret"])  # {client_id, client_secret} for OAuth records
        basic = base64.b64encode(f"{oauth['client_id']}:{oauth['client_secret']}".encode()).decode()
        answer = requests.post(f"{meta['api_base']}/oidc/v1/token", timeout=10,
                               headers={"Authorization": f"Basic {basic}"},
                               data={"grant_type": "client_credentials", "scope": "all-apis"})
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def _published(self) -> dict[str, str]:
        """model -> flavor, from the record Braintrust holds now."""
        answer = requests.get(f"{self.emulator.braintrust_url}/v1/ai_secret", timeout=10,
                              params={"ai_secret_name": self.record["name"]},
                              headers={"Authorization": f"Bearer {self.emulator.braintrust_api_key}"})
        answer.raise_for_status()
        items = answer.json()["objects"]
        custom = items[0]["metadata"].get("customModels") or {}
        return {name: spec.get("flavor", "chat") for name, spec in custom.items()}

    def _query(self, token: str, model: str, flavor: str) -> None:
        body: dict[str, Any] = ({"messages": [{"role": "user", "content": "ping"}], "max_tokens": 5}
                                if flavor == "chat" else {"prompt": "ping", "max_tokens": 5})
        answer = requests.post(f"{self.record['metadata']['api_base']}/serving-endpoints/{model}/invocations",
                               json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.queries[model] = self.queries.get(model, 0) + 1
        if answer.status_code != 200:
            self.failures.append(f"{model}: {answer.status_code} {answer.text[:200]}")

    def _loop(self) -> None:
        try:
            token = self._token()
            while not self._stop.is_set():
                for model, flavor in self._published().items():
                    self._query(token, model, flavor)
        except Exception as exc:  # the probe itself broke: that is a failure too
            self.failures.append(f"probe: {type(exc).__name__}: {exc}")

    @contextmanager
    def running(self) -> Iterator[Probe]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=30)
            self._stop.clear()


def test_no_query_fails_while_an_endpoint_switches_models_traffic_shifts_and_one_is_renamed(
        run: Run, emulator: EmulatorClient) -> None:
    first = run.engine(governed())
    result = first.up()
    record = result.export("braintrust_provider")
    probe = Probe(emulator, record)

    steps: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    custom_model = governed()
    pt = custom_model["config"][f"{PROJECT}:endpoints"][0]
    for key in ("foundation_model", "throughput"):
        pt.pop(key)
    pt.update(model={"name": CHAT_MODEL, "version": "1"}, workload_size="Small", scale_to_zero=False)
    steps.append(("foundation -> custom", custom_model, {PT: "update"}))
    steps.append(("custom -> foundation", governed(), {PT: "update"}))
    shifted = governed()
    shifted["config"][f"{PROJECT}:endpoints"][1]["models"][0]["traffic"] = 10
    shifted["config"][f"{PROJECT}:endpoints"][1]["models"][1]["traffic"] = 90
    steps.append(("traffic 90/10 -> 10/90", shifted, {CUSTOM: "update"}))
    only_new = copy.deepcopy(shifted)
    only_new["config"][f"{PROJECT}:endpoints"][1]["models"] = [
        {"name": CHURN, "version": "4", "scale_to_zero": True}]
    steps.append(("the old version dropped", only_new, {CUSTOM: "update"}))
    renamed = copy.deepcopy(only_new)
    renamed["config"][f"{PROJECT}:endpoints"][1]["name"] = f"{CUSTOM}-v4"
    steps.append(("rename", renamed, {f"{CUSTOM}-v4": "create", CUSTOM: "delete"}))

    w = emulator.workspace_client()
    for what, doc, expected in steps:
        with probe.running():
            ops = run.up(doc)
        assert not probe.failures, (what, probe.failures)
        for name, op in expected.items():
            assert ops[name] == op, (what, ops)
        assert not [n for n, op in ops.items() if op == "replace"], (what, ops)
    assert sum(probe.queries.values()) > 0 and f"{CUSTOM}-v4" in probe.queries
    # The foundation-model endpoint kept its identity through both switches.
    assert w.serving_endpoints.get(PT).id == result.by_name()[PT].plain["endpoint_id"]
    assert CUSTOM not in {e.name for e in w.serving_endpoints.list()}


@pytest.mark.parametrize("answer", ["refuse", "accept"])
def test_a_switch_into_model_units_is_refused_in_place_and_done_by_a_rename_under_either_answer(
        run: Run, emulator: EmulatorClient, answer: str) -> None:
    """No public source says whether a /pt endpoint takes a /config update or the reverse; the
    emulator plays both (pt_config_switch). Under either, the switch in place is refused before
    anything is written, and a new name does it with no failed query."""
    emulator.settings(pt_config_switch=answer)
    result = run.engine(governed()).up()
    probe = Probe(emulator, result.export("braintrust_provider"))

    def units(name: str) -> dict[str, Any]:
        doc = governed()
        pt = doc["config"][f"{PROJECT}:endpoints"][0]
        for key in ("throughput", "description"):
            pt.pop(key)
        pt.update(name=name, foundation_model="meta-llama-4-maverick", model_units=50)
        return doc

    emulator.clear_requests()
    with pytest.raises(EngineError) as info:
        run.engine(units(PT)).preview()
    assert "model units" in str(info.value) and "new name" in str(info.value)
    assert writes(emulator) == []

    with probe.running():
        ops = run.up(units(f"{PT}-units"))
    assert not probe.failures, probe.failures
    assert ops[f"{PT}-units"] == "create" and ops[PT] == "delete"
    assert f"{PT}-units" in probe.queries


def test_settings_switched_on_by_hand_are_turned_off_by_the_next_up(run: Run, emulator: EmulatorClient) -> None:
    """The stack file is authoritative for the endpoints it creates: a guardrail, a limit and
    an inference table someone adds by hand are drift, and the next `up` turns them off in one
    write (two for the table's move, none here: the stack sets no table)."""
    doc = governed(guardrails=None, inference_table=None, rate_limits=[{"key": "endpoint", "calls": 600}])
    pt = doc["config"][f"{PROJECT}:endpoints"][0]
    for key in ("guardrails", "inference_table"):
        pt.pop(key)
    run.up(doc)
    w = emulator.workspace_client()
    w.serving_endpoints.put_ai_gateway(
        PT, rate_limits=[AiGatewayRateLimit(renewal_period=MINUTE, calls=600),
                         AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.USER, calls=1)],
        guardrails=AiGatewayGuardrails(input=AiGatewayGuardrailParameters(safety=True)),
        inference_table_config=AiGatewayInferenceTableConfig(catalog_name="main", schema_name="x", enabled=True),
        usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True))
    emulator.clear_requests()
    assert run.engine(doc).preview().ops()[PT] == "same"  # preview compares with state...
    run.engine(doc).refresh()  # ...refresh reads the workspace
    ops = run.up(doc)
    assert ops[PT] == "update"
    assert writes(emulator) == [("PUT", f"/api/2.0/serving-endpoints/{PT}/ai-gateway")]
    gw = w.serving_endpoints.get(PT).ai_gateway
    assert gw is not None and gw.guardrails is None
    assert gw.rate_limits == [AiGatewayRateLimit(renewal_period=MINUTE, key=AiGatewayRateLimitKey.ENDPOINT,
                                                 calls=600)]
    assert gw.inference_table_config is not None and gw.inference_table_config.enabled is False
