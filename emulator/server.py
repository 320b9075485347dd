"""The HTTP server: ThreadingHTTPServer, the routes table, authentication per route, fault
injection, the request log, and persistence of the state after each change.

    server = EmulatorServer(host="127.0.0.1", port=0, admin_token="...", ready_after=0.3,
                            braintrust_api_key="...", models=["main.ml.churn_scorer:3"],
                            state_file=None)
    server.start(); server.url; server.stop()
"""

from __future__ import annotations

import json
import secrets as pysecrets
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import admin, auth, braintrust, invocations, permissions, scim, serving_endpoints, sp_secrets
from .errors import ApiError, BraintrustError, permission_denied, unauthenticated
from .models import Workspace
from .routing import Request, Response, Route

ROUTES: list[Route] = [
    *auth.ROUTES, *scim.ROUTES, *sp_secrets.ROUTES, *permissions.ROUTES,
    *invocations.ROUTES, *serving_endpoints.ROUTES, *braintrust.ROUTES,
]
ADMIN_PREFIX = "/_emulator/"
MAX_LOG = 10_000


class App:
    """Everything between a parsed request and its response."""

    def __init__(self, ws: Workspace, admin_token: str, braintrust_api_key: str,
                 state_file: str | None) -> None:
        self.ws = ws
        self.admin_token = admin_token
        self.braintrust_api_key = braintrust_api_key
        self.state_file = state_file
        self.faults = admin.Faults()
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()

    # ---- admin helpers -------------------------------------------------------------------

    def reset(self) -> None:
        with self.ws.lock:
            self.ws.reset()
            self.faults.clear()
            self.clear_request_log()
            self.persist()

    def request_log(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def persist(self) -> None:
        if self.state_file:
            self.ws.save(self.state_file)

    # ---- dispatch --------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.path.startswith(ADMIN_PREFIX):
            return self._admin(req)  # never logged, never faulted
        resp = self._dispatch(req)
        with self._log_lock:
            # Method, path (no query string), status, time, principal: never bodies or tokens.
            entry = {"method": req.method, "path": req.path, "status": resp.status,
                     "time": time.time(),
                     "principal": req.principal.label if req.principal else None}
            if resp.lost:
                entry["lost"] = True  # handled, but the client never saw `status`
            self._log.append(entry)
            del self._log[:-MAX_LOG]
        return resp

    def _admin(self, req: Request) -> Response:
        try:
            if not self._bearer_is(req, self.admin_token):
                raise unauthenticated("The emulator's admin path needs the admin token.")
            handler = admin.ADMIN_ROUTES.get((req.method, req.path[len(ADMIN_PREFIX):].strip("/")))
            if handler is None:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No admin route {req.method} {req.path}")
            with self.ws.lock:
                resp = handler(self, req)
                if req.method != "GET":
                    self.persist()
                return resp
        except ApiError as e:
            return self._error(e)

    @staticmethod
    def _bearer_is(req: Request, expected: str) -> bool:
        scheme, _, value = (req.header("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and pysecrets.compare_digest(value.strip(), expected)

    @staticmethod
    def _error(e: ApiError) -> Response:
        return Response(status=e.status, body=e.body(), headers=dict(e.headers))

    def _match(self, req: Request) -> Route:
        path_matched = False
        for route in ROUTES:
            m = route.regex.match(req.path)
            if not m:
                continue
            path_matched = True
            if route.method == req.method:
                req.params = {k: unquote(v) for k, v in m.groupdict().items()}
                return route
        if path_matched:
            raise ApiError(405, "BAD_REQUEST", f"Method {req.method} is not allowed on {req.path}")
        if req.path.startswith("/braintrust/"):
            raise BraintrustError(404, "NotFound", f"No route {req.method} {req.path}")
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")

    def _authenticate(self, route: Route, req: Request) -> None:
        if route.auth == "public":
            return
        if route.auth == "braintrust":
            if not self._bearer_is(req, self.braintrust_api_key):
                raise BraintrustError(401, "Unauthorized", "Invalid or missing API key")
            return
        req.principal = auth.resolve_principal(self.ws, req, self.admin_token)
        if route.serving_scope and not auth.token_allows_serving(req.principal):
            raise permission_denied(
                f"The token's scopes {req.principal.scopes} do not allow the serving APIs; "
                f"request a token with scope all-apis or a serving scope.")

    def _dispatch(self, req: Request) -> Response:
        fault = self.faults.take(req.method, req.path)
        if fault is not None and fault.kind == "status":
            return fault.response()
        resp = self._handle_locked(req)
        if fault is not None:  # lost-answer: the work is done, the answer never leaves
            resp.lost = True
        return resp

    def _handle_locked(self, req: Request) -> Response:
        with self.ws.lock:
            try:
                route = self._match(req)
                self._authenticate(route, req)
                resp = route.handler(self.ws, req)
            except ApiError as e:
                return self._error(e)
            except Exception as e:  # noqa: BLE001 - a bug answers 500 like a server would
                traceback.print_exc(file=sys.stderr)
                return self._error(ApiError(500, "INTERNAL_ERROR", f"Emulator error: {e!r}"))
            if req.method != "GET" and resp.status < 400:
                self.persist()
            return resp


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, each keep-alive response waits for
    # the client's delayed ACK (~40 ms on loopback). Databricks' front end has no such stall.
    disable_nagle_algorithm = True
    server_version = "DatabricksEmulator/1.0"
    app: App  # set on the subclass the server builds

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        path = unquote(url.path)
        if len(path) > 1:
            path = path.rstrip("/")
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        req = Request(method=self.command, path=path,
                      query=parse_qs(url.query, keep_blank_values=True),
                      headers={k.lower(): v for k, v in self.headers.items()},
                      raw_body=body, base_url=f"http://{host}")
        resp = self.app.handle(req)
        if resp.lost:
            self._drop_connection()
            return
        if resp.raw is not None:
            payload = resp.raw
        elif resp.status == 204 or resp.body is None:
            payload = b""
        else:
            payload = json.dumps(resp.body).encode()
        self.send_response(resp.status)
        if payload or resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop_connection(self) -> None:
        """Close without a byte of answer: the client's read fails (RemoteDisconnected, a
        requests.ConnectionError), which databricks-sdk retries for every method."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log is the admin path's; stderr stays quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop every keep-alive connection. `shutdown()` only stops accepting: without this, a
        client's pooled connection would go on talking to a stopped server's state (and that
        state would go on writing the --state file), so a restart would not be one."""
        with self._open_lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class EmulatorServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 8787, admin_token: str | None = None,
                 ready_after: float = 5.0, braintrust_api_key: str | None = None,
                 models: list[str] | None = None, state_file: str | None = None) -> None:
        self.host = host
        self.port = port
        self.admin_token = admin_token or "dapi" + pysecrets.token_hex(16)
        self.braintrust_api_key = braintrust_api_key or "sk-bt-" + pysecrets.token_urlsafe(24)
        self.workspace = Workspace(ready_after=ready_after, models=models)
        self.state_file = state_file
        if state_file:
            self.workspace.load(state_file)
        self.app = App(self.workspace, self.admin_token, self.braintrust_api_key, state_file)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._httpd.server_address[:2]
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - describing, not binding
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._httpd = _Server((self.host, self.port), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="emulator",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
