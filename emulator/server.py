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

from . import (
    admin,
    auth,
    braintrust,
    invocations,
    permissions,
    scim,
    serving_endpoints,
    sp_secrets,
    unity_catalog,
)
from .errors import (
    FAULT_CODES,
    ApiError,
    BraintrustError,
    bad_request,
    permission_denied,
    unauthenticated,
)
from .faults import Faults
from .models import Switches, Workspace
from .routing import Request, Response, Route

ROUTES: list[Route] = [
    *auth.ROUTES, *scim.ROUTES, *sp_secrets.ROUTES, *permissions.ROUTES,
    *invocations.ROUTES, *serving_endpoints.ROUTES, *unity_catalog.ROUTES, *braintrust.ROUTES,
]
ADMIN_PREFIX = "/_emulator/"
MAX_LOG = 10_000
MAX_BODY = 4 * 1024 * 1024  # larger bodies are refused (400): no call of this API sends one
MAX_DISCARD = 64 * 1024 * 1024  # how much of a refused body is read before answering


def has_empty_segment(path: str) -> bool:
    """`//x`, `/x//y` and `/x/` have an empty segment; `/` alone does not."""
    return path != "/" and ("//" in path or path.endswith("/") or not path.startswith("/"))


class App:
    """Everything between a parsed request and its response."""

    def __init__(self, ws: Workspace, admin_token: str, braintrust_api_key: str,
                 state_file: str | None) -> None:
        self.ws = ws
        self.admin_token = admin_token
        self.braintrust_api_key = braintrust_api_key
        self.state_file = state_file
        self.faults = Faults()
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
        self._record(req, resp)
        return resp

    def malformed(self, method: str, message: str) -> Response:
        """A request the HTTP layer could not parse: 400, logged without its path."""
        resp = self._error(bad_request(message))
        self._record(Request(method=method, path="<malformed>", query={}, headers={},
                             raw_body=b"", base_url=""), resp)
        return resp

    def _record(self, req: Request, resp: Response) -> None:
        with self._log_lock:
            # Method, path (no query string), status, time, principal: never bodies or tokens.
            entry: dict[str, Any] = {
                "method": req.method, "path": req.path, "status": resp.status, "time": time.time(),
                "principal": req.principal.label if req.principal else None}
            if resp.lost:
                entry["lost"] = True  # handled, but the client never saw `status`
            self._log.append(entry)
            del self._log[:-MAX_LOG]

    def _admin(self, req: Request) -> Response:
        try:
            if not self._bearer_is(req, self.admin_token):
                raise unauthenticated("The emulator's admin path needs the admin token.")
            handler = admin.ADMIN_ROUTES.get((req.method, req.path[len(ADMIN_PREFIX):]))
            if handler is None:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No admin route {req.method} {req.path}")
            with self.ws.lock:
                resp = handler(self, req)
                if req.method != "GET":
                    self.persist()
                return resp
        except ApiError as e:
            return self._error(e)
        except (TypeError, ValueError) as e:  # a body field of the wrong type
            return self._error(bad_request(f"Bad admin request: {e}"))

    @staticmethod
    def _bearer_is(req: Request, expected: str) -> bool:
        scheme, _, value = (req.header("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and auth.same_token(value.strip(), expected)

    @staticmethod
    def _error(e: ApiError) -> Response:
        return Response(status=e.status, body=e.body(), headers=dict(e.headers))

    def _match(self, req: Request) -> Route:
        if has_empty_segment(req.raw_path or req.path):
            # A real gateway routes `//oidc/v1/token` or `/serving-endpoints//invocations`
            # nowhere: a trailing slash in a configured base URL must fail here as it would there.
            if req.path.startswith("/braintrust/"):
                raise BraintrustError(404, "NotFound", f"No route {req.method} {req.path}")
            raise ApiError(404, "ENDPOINT_NOT_FOUND",
                           f"No API found for '{req.method} {req.path}' (empty path segment)")
        path_matched = False
        for route in ROUTES:
            m = route.regex.fullmatch(req.path)
            if not m:
                continue
            path_matched = True
            if route.method == req.method:
                req.params = {k: unquote(v) for k, v in m.groupdict().items()}
                return route
        if path_matched:
            if req.path.startswith("/braintrust/"):
                raise BraintrustError(405, "MethodNotAllowed", f"Method {req.method} is not allowed on {req.path}")
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
        if fault is not None and fault.kind in ("status", "swallowed"):
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
                return self._error(ApiError(500, "INTERNAL_ERROR",
                                            f"Emulator error: {type(e).__name__}"))
            if req.method != "GET" and resp.status < 400:
                self.persist()
            return resp


class MalformedRequest(Exception):
    """A request the server cannot parse: answered 400 BAD_REQUEST, then the connection closes
    (its unread remainder would otherwise be taken for the next request)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, each keep-alive response waits for
    # the client's delayed ACK (~40 ms on loopback). Databricks' front end has no such stall.
    disable_nagle_algorithm = True
    server_version = "DatabricksEmulator/1.0"
    app: App  # set on the subclass the server builds

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header on every answer is the workspace's clock (admin `clock` moves it), as
        # a real workspace's answers carry its own time: the providers decide rotation on it.
        return super().date_time_string(self.app.ws.now() if timestamp is None else timestamp)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024).strip().split(b";")[0]
                try:
                    size = int(line or b"0", 16)
                except ValueError:
                    raise MalformedRequest("Malformed request: bad chunk size") from None
                if size < 0 or total + size > MAX_BODY:
                    raise MalformedRequest(f"Malformed request: the body exceeds {MAX_BODY} bytes")
                if size == 0:
                    self.rfile.readline(1024)
                    break
                chunks.append(self.rfile.read(size))
                total += size
                self.rfile.readline(1024)
            return b"".join(chunks)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0 or len(self.headers.get_all("Content-Length") or []) > 1:
            raise MalformedRequest(f"Malformed request: bad Content-Length {raw[:40]!r}")
        if length > MAX_BODY:
            self._discard(length)
            raise MalformedRequest(f"Malformed request: the body exceeds {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            raise MalformedRequest("Malformed request: the body is shorter than its Content-Length")
        return body

    def _discard(self, length: int) -> None:
        """Read (a bounded part of) a body we refuse, so the client reads our answer instead of
        a connection reset."""
        left = min(length, MAX_DISCARD)
        self.connection.settimeout(5)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _target(self) -> tuple[str, str]:
        """Path and query as the client sent them. http.server collapses a leading '//' in
        self.path (gh-87389); a real gateway does not, so the request line is read again."""
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else self.path
        if "://" in target.split("?", 1)[0]:  # absolute form: http://host/path
            parts = urlsplit(target)
            return parts.path or "/", parts.query
        path, _, query = target.partition("?")
        return path.partition("#")[0], query

    @staticmethod
    def _decode_path(raw: str) -> str:
        try:
            # The request line is read as latin-1: back to bytes, then strict UTF-8.
            return unquote(raw.encode("latin-1").decode("utf-8"), errors="strict")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise MalformedRequest("Malformed request: the path is not valid UTF-8") from None

    def _serve(self) -> None:
        try:
            if self.request_version == "HTTP/0.9":  # `GET /` with no version: no headers, no status line
                self.request_version = "HTTP/1.1"
                raise MalformedRequest("Malformed request: HTTP/0.9 is not supported (send HTTP/1.1)")
            body = self._read_body()
            raw_path, query = self._target()
            path = self._decode_path(raw_path)
        except MalformedRequest as e:
            self.close_connection = True
            self._send(self.app.malformed(self.command, str(e)))
            return
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])  # type: ignore[index] # an AF_INET address
        req = Request(method=self.command, path=path,
                      query=parse_qs(query, keep_blank_values=True),
                      headers={k.lower(): v for k, v in self.headers.items()},
                      raw_body=body, base_url=f"http://{host}", raw_path=raw_path)
        resp = self.app.handle(req)
        if resp.lost:
            self._drop_connection()
            return
        self._send(resp)

    def _send(self, resp: Response) -> None:
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
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, header too long, unknown method) in a
        Databricks-shaped JSON body instead of its HTML page."""
        self.close_connection = True
        if not self.request_version.startswith("HTTP/1."):
            self.request_version = "HTTP/1.1"  # else no status line at all (HTTP/0.9 style)
        text = message or self.responses.get(code, ("Error",))[0]
        err = ApiError(code, FAULT_CODES.get(code, "BAD_REQUEST"), f"Malformed request: {text}")
        try:
            self._send(Response(status=code, body=err.body()))
        except OSError:
            pass

    def _drop_connection(self) -> None:
        """Close without a byte of answer: the client's read fails (RemoteDisconnected, a
        requests.ConnectionError), which databricks-sdk retries for every method."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or drops its connection is no server error: stay quiet. Anything
        else is a bug in the HTTP layer and keeps its traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

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


def new_admin_token() -> str:
    return "dapi" + pysecrets.token_hex(16)


def new_braintrust_api_key() -> str:
    return "sk-bt-" + pysecrets.token_urlsafe(24)


class EmulatorServer:
    """The emulator in this process. The switches (see models.Switches and the README) default
    to the emulator's behaviour before they existed; `seed` None draws one (see `.seed`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8787, admin_token: str | None = None,
                 ready_after: float = 5.0, braintrust_api_key: str | None = None,
                 models: list[str] | None = None, state_file: str | None = None, *,
                 pay_per_token_acl: str = "accept",  # noqa: S107 - a switch, not a password
                 propagation_delay: float = 0.0,
                 retired: list[str] | tuple[str, ...] = (), scim_external_id: str = "keep",
                 seed: int | None = None, braintrust_unknown_id: str = "404",
                 braintrust_put_omitted: str = "clear",
                 braintrust_put_null_secret: str = "keep",  # noqa: S107 - a switch, not a password
                 braintrust_other_org: str = "403",
                 pt_config_switch: str = "refuse") -> None:
        self.host = host
        self.port = port
        self.admin_token = admin_token or new_admin_token()
        self.braintrust_api_key = braintrust_api_key or new_braintrust_api_key()
        self.seed = seed if seed is not None else pysecrets.randbelow(2**31)
        switches = Switches(ready_after=ready_after, pay_per_token_acl=pay_per_token_acl,
                            propagation_delay=propagation_delay, retired=tuple(retired),
                            scim_external_id=scim_external_id, seed=self.seed,
                            braintrust_unknown_id=braintrust_unknown_id,
                            braintrust_put_omitted=braintrust_put_omitted,
                            braintrust_put_null_secret=braintrust_put_null_secret,
                            braintrust_other_org=braintrust_other_org,
                            pt_config_switch=pt_config_switch)
        self.workspace = Workspace(models=models, switches=switches)
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
        if isinstance(host, bytes):
            host = host.decode()
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
