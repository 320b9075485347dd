"""Lost answers played by the network instead of the emulator: a proxy between the provider
process and the emulator forwards every request, and for a create it drops the connection once
the workspace has answered, before a byte of that answer reaches the provider. Principal,
secret and grant must converge with no duplicate and no stray secret, as with the emulator's
own lost-answer fault."""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from components.providers.grant import QueryGrant, QueryGrantProvider
from components.providers.oauth_secret import OAuthSecret, OAuthSecretProvider
from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
from testing.provider import Engine, ProviderProcess
from tests.conftest import EmulatorHandle
from tests.lifecycle.test_lifecycle import PPT, grant_inputs

CREATES = [("POST", re.compile(r"/scim/v2/ServicePrincipals$")),
           ("POST", re.compile(r"/credentials/secrets$")),
           ("PATCH", re.compile(r"^/api/2\.0/permissions/serving-endpoints/[^/]+$"))]
NAME = "braintrust-proxy"
MARKER = "databricks-braintrust/proxy"


class DroppingProxy:
    """Forwards HTTP to `upstream`; the first `drops` answers to each create are dropped after
    the upstream handled the request."""

    def __init__(self, upstream: str, drops: int = 1) -> None:
        self.upstream = urlsplit(upstream)
        self.drops: dict[str, int] = {}
        self.default_drops = drops
        self.dropped: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream.hostname or "127.0.0.1",
                                                  proxy.upstream.port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body,
                                 headers={k: v for k, v in self.headers.items()
                                          if k.lower() != "host"})
                    resp = conn.getresponse()
                    payload = resp.read()
                finally:
                    conn.close()
                if proxy.take(self.command, self.path):
                    # Handled upstream; the answer never leaves: what a network drop does.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self, method: str, path: str) -> bool:
        path = path.split("?", 1)[0]
        for m, pattern in CREATES:
            if m == method and pattern.search(path):
                key = f"{method} {pattern.pattern}"
                with self.lock:
                    left = self.drops.setdefault(key, self.default_drops)
                    if left > 0:
                        self.drops[key] = left - 1
                        self.dropped.append(f"{method} {path}")
                        return True
        return False

    def __enter__(self) -> DroppingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def through_proxy(emulator: EmulatorHandle) -> Iterator[tuple[DroppingProxy, Engine]]:
    with DroppingProxy(emulator.url) as proxy:
        proc = ProviderProcess()
        try:
            proc.configure({"workspace": {"host": proxy.url},
                            "databricks_token": emulator.admin_token},
                           secret_keys=("databricks_token",))
            yield proxy, Engine(proc)
        finally:
            proc.close()


def test_every_create_losing_its_answer_in_the_network_leaves_one_of_each(
        emulator: EmulatorHandle, through_proxy: tuple[DroppingProxy, Engine]) -> None:
    proxy, engine = through_proxy
    w = emulator.workspace_client()
    ppt = w.serving_endpoints.get(PPT)
    sp = engine.register(ServicePrincipal, ServicePrincipalProvider, "principal", {
        "display_name": NAME, "external_id": MARKER, "entitlements": []}).outputs
    secret = engine.register(OAuthSecret, OAuthSecretProvider, "secret", {
        "service_principal_id": sp["principal_id"], "application_id": sp["application_id"],
        "lifetime_days": 30, "rotate_before_days": 7, "scopes": ["all-apis"]}).outputs
    engine.register(QueryGrant, QueryGrantProvider, "grant",
                    grant_inputs({"endpoint_id": ppt.id, "name": ppt.name}, sp))
    assert len(proxy.dropped) == 3  # each create lost its first answer

    assert [str(p.id) for p in w.service_principals.list(filter=f'displayName eq "{NAME}"')] == [
        sp["principal_id"]]
    assert {s.id for s in w.service_principal_secrets_proxy.list(sp["principal_id"])} == {
        secret["secret_id"]}
    ours = [(item.service_principal_name, p.permission_level.value)
            for item in w.serving_endpoints.get_permissions(ppt.id or "").access_control_list or []
            if item.service_principal_name == sp["application_id"]
            for p in item.all_permissions or [] if p.permission_level and not p.inherited]
    assert ours == [(sp["application_id"], "CAN_QUERY")]

    for cls, name in ((QueryGrant, "grant"), (OAuthSecret, "secret"),
                      (ServicePrincipal, "principal")):
        engine.destroy(cls, name)
    assert list(w.service_principals.list(filter=f'displayName eq "{NAME}"')) == []

