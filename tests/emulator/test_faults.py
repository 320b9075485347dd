"""Fault kinds of the admin faults API, checked with the real databricks-sdk."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from databricks.sdk.errors import BadRequest


def test_lost_answer_create_is_handled_then_the_sdk_resends_it(w, emulator):
    emulator.lose_answer("POST", r"^/api/2\.0/preview/scim/v2/ServicePrincipals$")

    created = w.service_principals.create(display_name="lost-answer-sp")

    # The SDK saw a connection error and re-sent the POST: the first one was handled too, so
    # the workspace now holds two principals of that name (the duplicate issue 10 describes).
    same_name = [sp for sp in w.service_principals.list(filter='displayName eq "lost-answer-sp"')]
    assert len(same_name) == 2
    assert created.id in {sp.id for sp in same_name}
    posts = [r for r in emulator.requests()
             if r["method"] == "POST" and r["path"] == "/api/2.0/preview/scim/v2/ServicePrincipals"]
    assert [r["status"] for r in posts] == [201, 201]
    assert [r.get("lost", False) for r in posts] == [True, False]


def test_lost_answer_count_and_offset_apply_like_status_faults(w, emulator):
    emulator.lose_answer("POST", r"/ServicePrincipals$", count=1, offset=1)
    w.service_principals.create(display_name="first")  # skipped by the offset: answered
    w.service_principals.create(display_name="second")  # lost once, then re-sent
    names = sorted(sp.display_name for sp in w.service_principals.list())
    assert names == ["first", "second", "second"]


def test_lost_answer_closes_the_connection_without_a_byte(emulator):
    emulator.lose_answer("GET", r"^/api/2\.0/serving-endpoints$")
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /api/2.0/serving-endpoints HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + emulator.admin_token.encode() + b"\r\n\r\n")
        assert sock.recv(1024) == b""
    # The rule is used up: the next request is answered.
    assert emulator.workspace_client().serving_endpoints.list() is not None


def test_status_stays_the_default_kind_and_unknown_kinds_are_refused(emulator):
    emulator.admin("POST", "faults", {"method": "GET", "path": "^/api/2.0/serving-endpoints$",
                                      "status": 500})
    with pytest.raises(urllib.request.HTTPError) as e:
        emulator.admin("POST", "faults", {"kind": "teleport", "path": "x"})
    assert e.value.code == 400
    assert b"lost-answer" in e.value.read()


def test_status_fault_without_a_status_is_refused(emulator):
    with pytest.raises(urllib.request.HTTPError) as e:
        emulator.admin("POST", "faults", {"kind": "status", "path": "x"})
    assert e.value.code == 400


def test_sdk_error_class_unchanged_for_status_faults(w, emulator):
    emulator.inject_fault("GET", r"^/api/2\.0/serving-endpoints$", 400)
    with pytest.raises(BadRequest):
        list(w.serving_endpoints.list())


@pytest.mark.parametrize("body", [
    {"status": 500, "count": "many"}, {"status": 500, "offset": -1},
    {"status": 500, "retry_after": "soon"}, {"status": True},
])
def test_a_malformed_fault_rule_is_refused_with_400(emulator, body):
    with pytest.raises(urllib.request.HTTPError) as e:
        emulator.admin("POST", "faults", {"path": "x", **body})
    assert e.value.code == 400


def test_a_lost_answer_on_the_braintrust_api_still_stores_the_record(emulator):
    import requests

    emulator.lose_answer("POST", r"^/braintrust/v1/ai_secret$")
    headers = {"Authorization": f"Bearer {emulator.braintrust_api_key}"}
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{emulator.braintrust_url}/v1/ai_secret", headers=headers, timeout=10,
                      json={"name": "lost", "secret": "s", "type": "databricks"})
    listed = requests.get(f"{emulator.braintrust_url}/v1/ai_secret", headers=headers,
                          params={"ai_secret_name": "lost"}, timeout=10).json()["objects"]
    assert [o["name"] for o in listed] == ["lost"]


# ------------------------------------------------------------------ issue 21's admin extensions


def _statuses(emulator, path):
    return [r["status"] for r in emulator.requests() if r["path"] == path]


def test_every_faults_only_each_nth_matching_request(emulator):
    import requests

    emulator.inject_fault("GET", r"^/\.well-known/databricks-config$", 429, count=2, every=3,
                          retry_after=1)
    for _ in range(9):
        requests.get(f"{emulator.url}/.well-known/databricks-config", timeout=10)
    assert _statuses(emulator, "/.well-known/databricks-config") == [
        200, 200, 429, 200, 200, 429, 200, 200, 200]


def test_a_swallowed_write_is_answered_200_and_never_applied(w, emulator):
    emulator.swallow("POST", r"^/api/2\.0/preview/scim/v2/ServicePrincipals$")
    w.service_principals.create(display_name="swallowed")
    assert [sp.display_name for sp in w.service_principals.list()] == []


def test_error_code_sets_the_code_of_the_injected_error(w, emulator):
    from databricks.sdk.errors import PermissionDenied

    emulator.inject_fault("GET", r"^/api/2\.0/serving-endpoints$", 403, error_code="FORBIDDEN")
    with pytest.raises(PermissionDenied) as err:
        list(w.serving_endpoints.list())
    assert err.value.error_code == "FORBIDDEN"


def test_a_clock_offset_moves_the_date_header_either_way(emulator):
    import email.utils
    import time

    import requests

    for offset in (-25 * 86400, 3 * 86400):
        emulator.set_clock_offset(offset)
        answer = requests.get(f"{emulator.url}/.well-known/databricks-config", timeout=10)
        date = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
        assert abs(date - (time.time() + offset)) < 5


def test_revoked_tokens_are_refused_and_secrets_mint_new_ones(w, emulator):
    import requests

    sp = w.service_principals.create(display_name="revoked")
    secret = w.service_principal_secrets_proxy.create(str(sp.id))

    def mint() -> str:
        answer = requests.post(f"{emulator.url}/oidc/v1/token", timeout=10,
                               data={"grant_type": "client_credentials", "scope": "all-apis"},
                               auth=(str(sp.application_id), str(secret.secret)))
        return str(answer.json()["access_token"])

    def me(token: str) -> int:
        return requests.get(f"{emulator.url}/api/2.0/preview/scim/v2/Me", timeout=10,
                            headers={"Authorization": f"Bearer {token}"}).status_code

    token = mint()
    assert me(token) == 200
    assert emulator.revoke_tokens() == 1
    assert me(token) == 401
    assert me(mint()) == 200
