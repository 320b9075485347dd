"""Credentials and the shared WorkspaceClient of the provider process.

`configure` only records where to connect (the stack's `workspace.host` and an optional
secret `databricks_token`); the client is built on first use, because constructing one
probes the host and retries for minutes. One client per host and credential is shared by
every provider and every worker thread of the process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components.spec.constants import PROJECT as PRODUCT

from ._errors import ProviderError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

_LOCK = threading.Lock()
_CLIENTS: dict[str, WorkspaceClient] = {}


@dataclass(frozen=True)
class Credentials:
    """Where to connect; None fields fall back to the SDK's unified auth (env, profiles)."""

    host: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed

    def fingerprint(self) -> str:
        # A hash, so the cache key (and anything that logs it) never holds the token.
        raw = f"{self.host or ''}\0{self.token or ''}".encode()
        return hashlib.sha256(raw).hexdigest()


def _as_object(value: Any) -> dict[str, Any] | None:
    # The engine may hand structured config over as a JSON string or as an object.
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ProviderError(
                "reading stack config failed", "databricks-braintrust:workspace",
                "set it to an object such as {host: https://<workspace>.cloud.databricks.com}",
            ) from exc
    if not isinstance(value, dict):
        raise ProviderError(
            "reading stack config failed", "databricks-braintrust:workspace",
            "set it to an object such as {host: https://<workspace>.cloud.databricks.com}",
        )
    return value


def credentials_from_config(req: ConfigureRequest) -> Credentials:
    """Read `<project>:workspace.host` and the optional secret `<project>:databricks_token`."""
    # Fully qualified keys: a bare key is qualified with PULUMI_PROJECT, which the provider
    # process only knows if the engine exported it (it falls back to "project").
    workspace = _as_object(req.config.get(f"{PRODUCT}:workspace")) or {}
    host = workspace.get("host") or None
    token = req.config.get(f"{PRODUCT}:databricks_token") or None
    return Credentials(host=host, token=token)


def workspace_client(creds: Credentials | None) -> WorkspaceClient:
    """The process-wide client for these credentials, built on first use (thread-safe)."""
    creds = creds or Credentials()
    key = creds.fingerprint()
    client = _CLIENTS.get(key)
    if client is not None:
        return client
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            from databricks.sdk import WorkspaceClient  # heavy import, only when needed

            kwargs: dict[str, Any] = {"product": PRODUCT, "product_version": "0.1.0"}
            if creds.host:
                kwargs["host"] = creds.host
            if creds.token:
                # An explicit token wins over whatever unified auth finds in the environment.
                kwargs["token"] = creds.token
                kwargs["auth_type"] = "pat"
            try:
                client = WorkspaceClient(**kwargs)
            except Exception as exc:  # noqa: BLE001 - the SDK raises ValueError and friends
                raise ProviderError(
                    "connecting to Databricks failed",
                    creds.host or "workspace from the environment",
                    "set databricks-braintrust:workspace.host and a token "
                    "(`pulumi config set --secret databricks_token ...`) or DATABRICKS_* variables",
                    f"{type(exc).__name__}: {exc}",
                ) from None
            _CLIENTS[key] = client
    return client


class DatabricksProvider(ResourceProvider):
    """Base of every provider here: credentials from `configure`, a lazily built client.

    Nothing is set in `__init__`, so the pickled provider (stored in state) holds no
    credentials and does not change between runs.
    """

    _creds: Credentials | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self._creds = credentials_from_config(req)

    @property
    def w(self) -> WorkspaceClient:
        return workspace_client(self._creds)

    def host(self) -> str:
        return (self.w.config.host or "").rstrip("/")
