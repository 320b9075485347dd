"""Malformed requests get a 400 with a Databricks-shaped body: never a traceback, never a
dropped connection, never a 500."""

from __future__ import annotations

import json
import socket

import pytest


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
