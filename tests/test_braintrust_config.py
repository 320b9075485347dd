"""BraintrustProviderConfig: the record Braintrust stores, with auth_type tied to the secret."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components.braintrust import REDACTED, build_provider_config, oauth_secret, validate_record

CLIENT_SECRET = "dose-test-client-secret-0001"
PAT = "dapi-test-personal-token-0002"


def record(auth_type: str = "service_principal_oauth", **overrides: Any) -> dict[str, Any]:
    secret = oauth_secret("3f1e2d4c-0000-4000-8000-00000000abcd", CLIENT_SECRET) if auth_type != "pat" else PAT
    data = {
        "name": "databricks-dev",
        "type": "databricks",
        "metadata": {
            "api_base": "https://acme-dev.cloud.databricks.com",
            "auth_type": auth_type,
            "supportsStreaming": True,
            "customModels": {"bt-llama": {"format": "openai", "flavor": "chat"},
                             "bt-mpt": {"format": "openai", "flavor": "completion"}},
            "models": ["bt-llama", "bt-mpt"],
        },
        "secret": secret,
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("auth_type", ["pat", "service_principal_oauth"])
def test_valid_config_round_trips(auth_type: str) -> None:
    original = record(auth_type)
    config, errors = validate_record(original)
    assert errors == []
    assert config.to_record() == original
    again, errors = validate_record(config.to_record())
    assert errors == [] and again == config


def with_metadata(**changes: Any) -> dict[str, Any]:
    data = record()
    data["metadata"] = {**data["metadata"], **changes}
    return data


def drop_format() -> dict[str, Any]:
    data = record()
    data["metadata"] = copy.deepcopy(data["metadata"])
    del data["metadata"]["customModels"]["bt-llama"]["format"]
    return data


BROKEN = {
    "wrong type": (record(type="openai"), "type"),
    "bad url": (with_metadata(api_base="not a url"), "metadata.api_base"),
    "trailing slash": (with_metadata(api_base="https://acme-dev.cloud.databricks.com/"), "must not end with '/'"),
    "oauth with a bare token": (record(secret=PAT), "JSON object"),
    "pat with json": (record("pat", secret=oauth_secret("a", "b")), "JSON credentials"),
    "empty client id": (record(secret=json.dumps({"client_id": "", "client_secret": "x"})), "client_id"),
    "custom model without format": (drop_format(), "format"),
    "empty pat": (record("pat", secret=""), "empty"),
    "model not in customModels": (with_metadata(models=["bt-llama", "bt-other"]), "bt-other"),
    "unknown auth type": (with_metadata(auth_type="oauth"), "auth_type"),
    "http on a public host": (with_metadata(api_base="http://acme-dev.cloud.databricks.com"), "https"),
    "model name with a trailing newline": (with_metadata(
        models=["bt-llama\n"], customModels={"bt-llama\n": {"format": "openai", "flavor": "chat"}}),
        "not a serving endpoint name"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_is_rejected_with_a_clear_message(case: str) -> None:
    data, expected = BROKEN[case]
    config, errors = validate_record(data)
    assert config is None
    assert any(expected in e for e in errors), errors
    assert all(CLIENT_SECRET not in e and PAT not in e for e in errors)


def test_braintrust_default_auth_type_is_pat_when_absent() -> None:
    data = record("pat")
    del data["metadata"]["auth_type"]
    config, errors = validate_record(data)
    assert errors == [] and config.metadata.auth_type == "pat"


def test_redacted_keeps_client_id_and_hides_secret() -> None:
    config, _ = validate_record(record())
    redacted = config.redacted()
    assert redacted["secret"] == {"client_id": "3f1e2d4c-0000-4000-8000-00000000abcd", "client_secret": REDACTED}
    assert CLIENT_SECRET not in json.dumps(redacted)
    assert CLIENT_SECRET not in repr(config) and CLIENT_SECRET not in str(config)


def test_redacted_pat_hides_the_token() -> None:
    config, _ = validate_record(record("pat"))
    assert config.redacted()["secret"] == REDACTED
    assert PAT not in json.dumps(config.redacted())


def test_build_lists_every_endpoint_once_as_openai_with_its_flavor() -> None:
    config = build_provider_config(
        name="databricks-dev", api_base="https://acme-dev.cloud.databricks.com",
        auth_type="service_principal_oauth", secret=oauth_secret("id", "s"),
        endpoints=[("bt-b", "completion"), ("bt-a", "chat")],
    )
    assert config.metadata.models == ["bt-a", "bt-b"]
    assert {k: (v.format, v.flavor) for k, v in config.metadata.customModels.items()} == {
        "bt-a": ("openai", "chat"), "bt-b": ("openai", "completion")}
    assert config.to_record()["metadata"]["auth_type"] == "service_principal_oauth"
