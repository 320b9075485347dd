"""Malformed requests get a 400 with a Databricks-shaped body: never a traceback, never a
dropped connection, never a 500."""

from __future__ import annotations

import json
import socket

import pytest
import requests


def _exchange(emulator, raw: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read one whole answer: (status, JSON body, headers block)."""
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer after {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
    status = int(head.split(b" ")[1])
    return status, json.loads(rest[:length]), head


def _post(emulator, path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emulator.admin_token}\r\n"
            f"Content-Type: application/json\r\n").encode() + extra + b"\r\n" + body


SP = "/api/2.0/preview/scim/v2/ServicePrincipals"
EP = "/api/2.0/serving-endpoints"


@pytest.mark.parametrize("name,raw_of", [
    ("content-length not a number", lambda e: _post(e, EP, b"{}", b"Content-Length: abc\r\n")),
    ("content-length negative", lambda e: _post(e, EP, b"{}", b"Content-Length: -5\r\n")),
    ("content-length twice", lambda e: _post(e, EP, b"{}", b"Content-Length: 2\r\nContent-Length: 2\r\n")),
    ("invalid JSON", lambda e: _post(e, EP, b"{not json", b"Content-Length: 9\r\n")),
    ("body not UTF-8", lambda e: _post(e, SP, b'{"displayName": "\xff\xfe"}', b"Content-Length: 21\r\n")),
    ("JSON nested too deeply", lambda e: _post(e, EP, b"[" * 100000, b"Content-Length: 100000\r\n")),
    ("path not UTF-8 (escaped)", lambda e: b"GET /api/2.0/serving-endpoints/%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("path not UTF-8 (raw)", lambda e: b"GET /api/2.0/serving-endpoints/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad chunk size", lambda e: _post(e, EP, b"zz\r\n{}\r\n0\r\n\r\n", b"Transfer-Encoding: chunked\r\n")),
    ("bad request line", lambda e: b"GET\r\n\r\n"),
    ("bad HTTP version", lambda e: b"GET / HTTP/9\r\n\r\n"),
    # JSON that Python reads but JSON does not, or cannot turn into a number: once a 500.
    ("integer past 4300 digits", lambda e: _post(e, EP, b'{"a": ' + b"9" * 5000 + b"}", b"Content-Length: 5007\r\n")),
    ("NaN", lambda e: _post(e, EP, b'{"name": NaN}', b"Content-Length: 13\r\n")),
    ("Infinity", lambda e: _post(e, SP, b'{"displayName": -Infinity}', b"Content-Length: 26\r\n")),
    # `GET /` with no version: http.server answered it HTTP/0.9 style, with no status line.
    ("HTTP/0.9 request", lambda e: b"GET /api/2.0/serving-endpoints\r\n\r\n"),
])
def test_malformed_requests_get_a_databricks_shaped_400(emulator, name, raw_of):
    status, body, _ = _exchange(emulator, raw_of(emulator))
    assert status == 400, name
    assert body["error_code"] == "BAD_REQUEST" and body["message"].startswith("Malformed request")
    assert "Traceback" not in body["message"]


def test_a_body_over_the_limit_is_answered_400_not_dropped(emulator):
    big = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    status, body, head = _exchange(emulator, _post(emulator, EP, big,
                                                   f"Content-Length: {len(big)}\r\n".encode()))
    assert status == 400 and "exceeds" in body["message"]
    assert b"connection: close" in head.lower()


def test_the_connection_stays_usable_after_invalid_json(emulator):
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        f = sock.makefile("rb")
        for body in (b"{oops", b'{"displayName": "after"}'):
            sock.sendall(_post(emulator, SP, body, f"Content-Length: {len(body)}\r\n".encode()))
            status = int(f.readline().split()[1])
            length = 0
            while (line := f.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length"):
                    length = int(line.split(b":")[1])
            f.read(length)
            assert status == (400 if body == b"{oops" else 201)


def test_a_non_utf8_body_is_no_longer_a_500(w, emulator):
    import requests

    resp = requests.post(emulator.url + SP, data=b'{"displayName": "\xff"}', timeout=10,
                         headers={"Authorization": f"Bearer {emulator.admin_token}"})
    assert resp.status_code == 400
    assert all(r["status"] != 500 for r in emulator.requests())


@pytest.mark.parametrize("path", ["/api/2.0/serving-endpoints", "/braintrust/v1/ai_secret",
                                  "/_emulator/settings"])
def test_a_token_with_non_ascii_bytes_is_unauthenticated_not_a_500(emulator, path):
    raw = f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + b"Authorization: Bearer \xff\xfe\r\n\r\n"
    status, body, _ = _exchange(emulator, raw)
    assert status == 401


@pytest.mark.parametrize("grant", ["client_credentials",
                                   "urn:ietf:params:oauth:grant-type:token-exchange"])
def test_basic_credentials_that_are_not_ascii_are_invalid_client_not_a_500(emulator, grant):
    body = f"grant_type={grant}&subject_token=x".encode()
    raw = (b"POST /oidc/v1/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\r\n"
           b"Content-Type: application/x-www-form-urlencoded\r\n"
           + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status, body_out, _ = _exchange(emulator, raw)
    assert status in (400, 401) and body_out.get("error")


WRONG_BODIES = [b"[]", b"null", b"1", b'"s"', b'{"name": 1, "config": []}',
                b'{"served_entities": "x"}', b'{"access_control_list": [1]}',
                b'{"access_control_list": [{"user_name": 1, "permission_level": "CAN_VIEW"}]}',
                b'{"displayName": 5}', b'{"Operations": [1]}',
                b'{"Operations": [{"op": "add", "path": "groups", "value": 3}]}',
                b'{"lifetime": 5}', b'{"scopes": "x"}', b'{"name": "x", "secret": 1}',
                b'{"metadata": 1}', b'{"messages": 1}', b'{"prompt": {}}', b'{"input": 1}',
                b'{"dataframe_records": 1}', b'{"add_tags": 1}', b'{"rate_limits": [1]}',
                b'{"model": 1, "messages": []}',
                # one level deeper, per API family
                b'{"name": "fz2", "config": {"served_entities": [1]}}',
                b'{"name": "fz2", "config": {"served_entities": [{"entity_name": 1}]}}',
                b'{"name": "fz2", "config": {"served_entities": [{"entity_name": '
                b'"system.ai.meta_llama_v3_1_8b_instruct", "entity_version": "1", '
                b'"max_provisioned_throughput": "x"}]}}',
                b'{"served_entities": [{"entity_name": "main.ml.churn_scorer", "entity_version": "3"}],'
                b' "traffic_config": {"routes": [1]}}',
                b'{"served_entities": [{"entity_name": "main.ml.churn_scorer", "entity_version": "3"}],'
                b' "traffic_config": 1}',
                b'{"served_entities": [{"external_model": 1}]}',
                b'{"served_models": [1]}', b'{"served_models": "x"}',
                b'{"name": "fz3", "tags": [1], "config": {}}', b'{"name": "fz3", "tags": "x"}',
                b'{"name": "fz3", "ai_gateway": 1}', b'{"name": "fz3", "rate_limits": [{"calls": "x"}]}',
                b'{"rate_limits": [{"calls": "x", "renewal_period": "minute"}]}',
                b'{"add_tags": [{"key": 1}]}', b'{"delete_tags": 1}', b'{"delete_tags": [{}]}',
                b'{"messages": [1]}', b'{"messages": [{"role": 1, "content": 2}]}',
                b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "x"}',
                b'{"messages": [{"role": "user", "content": "hi"}], "stream": "x"}',
                b'{"dataframe_split": 1}', b'{"instances": 1}', b'{"inputs": {}}',
                b'{"model": "fz", "messages": [{"role": "user", "content": ["x"]}]}',
                b'{"name": 1}', b'{"name": "x", "type": 1}', b'{"metadata": {"a": {}}}',
                b'{"entitlements": [1]}', b'{"groups": "x"}', b'{"Operations": [{"op": 1}]}',
                b'{"Operations": [{"op": "remove", "path": 1}]}',
                b'{"Operations": [{"op": "replace", "value": {"displayName": 1}}]}',
                b'{"Operations": [{"op": "add", "path": 1, "value": 1}]}',
                b'{"lifetime": "1.5s"}', b'{"lifetime": []}', b'{"scopes": [1]}',
                b'{"access_control_list": [{"group_name": ["x"], "permission_level": "CAN_VIEW"}]}',
                b'{"access_control_list": "x"}']


def test_no_route_answers_500_to_a_body_of_the_wrong_shape(w, emulator, make_sp):
    """Every route of the table, on objects that exist, with bodies of the wrong JSON types:
    refused, never a bug."""
    import http.client
    import re

    from emulator.server import ROUTES

    from .conftest import CHURN, LLAMA_8B, llama_config

    emulator.set_ready_after(0)
    ep = w.serving_endpoints.create("fz", config=llama_config("fz")).response
    sp, secret = make_sp()
    bt = requests.post(f"{emulator.braintrust_url}/v1/ai_secret", timeout=10,
                       headers={"Authorization": f"Bearer {emulator.braintrust_api_key}"},
                       json={"name": "fz", "secret": "s", "type": "databricks"}).json()

    def fill(pattern: str) -> str:
        def value(m: re.Match[str]) -> str:
            name, before = m.group(1), pattern[:m.start()]
            if "ai_secret" in before:
                return bt["id"]
            if "permissions" in before:
                return str(ep.id)
            if "credentials/secrets" in before:
                return str(secret.id)
            if "ervicePrincipals" in before:
                return str(sp.id)
            if "unity-catalog" in before:
                return CHURN if name == "name" else "3"
            return {"entity": LLAMA_8B, "version": "1"}.get(name, "fz")
        return re.sub(r"\(\?P<(\w+)>[^)]*\)", value, pattern).replace("\\", "")

    host, port = emulator.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    failures = []
    for route in sorted(ROUTES, key=lambda r: r.method == "DELETE"):  # deletes last
        path = fill(route.pattern)
        for body in WRONG_BODIES:
            conn.request(route.method, path, body=body, headers={
                "Authorization": f"Bearer {emulator.admin_token}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 500:
                failures.append((route.method, path, body, resp.status))
    conn.close()
    assert not failures, "\n".join(map(str, failures))
