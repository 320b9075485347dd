"""The gate's reading of an endpoint's state, and credentials from the stack config."""

from __future__ import annotations

import json

from databricks.sdk.service.serving import ServingEndpointDetailed
from pulumi.dynamic import Config, ConfigureRequest

from components.providers import _client
from components.providers.readiness import endpoint_status, failure_error


def ep(ready: str, update: str, entities: list[dict] | None = None) -> ServingEndpointDetailed:
    return ServingEndpointDetailed.from_dict({
        "name": "x", "state": {"ready": ready, "config_update": update},
        "config": {"config_version": 2, "served_entities": entities or []},
        "pending_config": {"config_version": 3, "served_entities": entities or []}})


def test_ready_needs_both_not_updating_and_ready() -> None:
    assert endpoint_status("x", ep("READY", "NOT_UPDATING")).ready
    assert not endpoint_status("x", ep("READY", "IN_PROGRESS")).ready
    assert not endpoint_status("x", ep("NOT_READY", "NOT_UPDATING")).ready


def test_failed_rollout_carries_the_failing_entitys_own_message() -> None:
    entities = [{"name": "good", "state": {"deployment": "DEPLOYMENT_READY",
                                           "deployment_state_message": "fine"}},
                {"name": "bad", "state": {"deployment": "DEPLOYMENT_FAILED",
                                          "deployment_state_message": "Out of GPU capacity"}}]
    status = endpoint_status("x", ep("NOT_READY", "UPDATE_FAILED", entities))
    assert status.failed and status.messages == ("bad: Out of GPU capacity",)
    text = str(failure_error([status]))
    assert text.splitlines()[0].startswith("1 serving endpoint(s) failed to roll out (x)")
    assert "Out of GPU capacity" in text


def _req(raw: dict) -> ConfigureRequest:
    return ConfigureRequest(Config(raw, project_name="databricks-braintrust"))


def test_credentials_from_structured_config_as_json_text_or_object() -> None:
    ws = {"host": "https://h.cloud.databricks.com"}
    for value in (json.dumps(ws), ws):
        creds = _client.credentials_from_config(_req({
            "databricks-braintrust:workspace": value,
            "databricks-braintrust:databricks_token": "dapi-secret"}))
        assert creds.host == ws["host"] and creds.token == "dapi-secret"
        assert "dapi-secret" not in repr(creds) and "dapi-secret" not in creds.fingerprint()


def test_no_config_falls_back_to_unified_auth() -> None:
    creds = _client.credentials_from_config(_req({}))
    assert creds.host is None and creds.token is None


def test_importing_and_configuring_builds_no_client() -> None:
    from components.providers.endpoint import EndpointProvider

    before = dict(_client._CLIENTS)
    p = EndpointProvider()
    p.configure(_req({"databricks-braintrust:workspace": {"host": "http://127.0.0.1:9"}}))
    assert _client._CLIENTS == before and p.__dict__.keys() == {"_creds"}
    assert EndpointProvider().__dict__ == {}  # nothing pickled into state
