"""Braintrust's AI-secret API under {emulator}/braintrust: upsert, create, list, get, patch, delete;
the secret is never returned."""

from __future__ import annotations

import json

import pytest
import requests

SECRET = json.dumps({"client_id": "11111111-2222-3333-4444-555555555555",
                     "client_secret": "dose0123456789abcdef0123456789abcdef"})


@pytest.fixture
def bt(emulator):
    def call(method: str, path: str = "", key: str | None = None, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or emulator.braintrust_api_key}"}
        return requests.request(method, f"{emulator.braintrust_url}/v1/ai_secret{path}",
                                headers=headers, timeout=10, **kw)

    return call


def _record(name="databricks-dev", secret=SECRET, **metadata):
    return {"name": name, "type": "databricks", "secret": secret,
            "metadata": {"api_base": "http://127.0.0.1:1", "auth_type": "service_principal_oauth",
                         **metadata}}


def test_put_upserts_by_name_and_keeps_the_secret_when_absent(bt):
    first = bt("PUT", json=_record()).json()
    assert first["name"] == "databricks-dev" and first["type"] == "databricks"
    assert "secret" not in first and first["preview_secret"]
    assert SECRET not in json.dumps(first)
    body = _record(supportsStreaming=False)
    del body["secret"]
    second = bt("PUT", json=body).json()
    assert second["id"] == first["id"]
    assert second["metadata"]["supportsStreaming"] is False
    assert second["preview_secret"] == first["preview_secret"]  # the stored secret was kept
    third = bt("PUT", json=_record(secret="dapi-a-completely-different-token-xyz")).json()
    assert third["preview_secret"] != first["preview_secret"]


def test_post_returns_an_existing_record_unmodified(bt):
    created = bt("POST", json=_record()).json()
    again = bt("POST", json=_record(api_base="http://other")).json()
    assert again["id"] == created["id"] and again["metadata"] == created["metadata"]


def test_list_by_name_get_patch_deep_merges_and_delete(bt):
    rec = bt("PUT", json=_record(customModels={"a": {"format": "openai", "flavor": "chat"}})).json()
    bt("PUT", json=_record(name="other"))
    listed = bt("GET", params={"ai_secret_name": "databricks-dev"}).json()["objects"]
    assert [r["id"] for r in listed] == [rec["id"]]
    assert len(bt("GET").json()["objects"]) == 2
    patched = bt("PATCH", f"/{rec['id']}", json={"metadata": {"customModels": {
        "b": {"format": "openai", "flavor": "completion"}}}}).json()
    assert set(patched["metadata"]["customModels"]) == {"a", "b"}
    assert patched["metadata"]["auth_type"] == "service_principal_oauth"
    assert bt("GET", f"/{rec['id']}").json()["metadata"] == patched["metadata"]
    assert bt("DELETE", f"/{rec['id']}").status_code == 200
    assert bt("GET", f"/{rec['id']}").status_code == 404


def test_a_wrong_or_missing_key_is_401(bt, emulator):
    r = bt("GET", key="sk-wrong")
    assert r.status_code == 401 and set(r.json()) == {"Code", "Message"}
    assert requests.get(f"{emulator.braintrust_url}/v1/ai_secret", timeout=10).status_code == 401


def test_the_databricks_admin_token_is_not_a_braintrust_key(bt, emulator):
    assert bt("GET", key=emulator.admin_token).status_code == 401
