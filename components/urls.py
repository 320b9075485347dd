"""The one rule for a Databricks workspace URL, shared by the stack spec and the Braintrust
record (which must carry the same URL, since the proxy builds request URLs by concatenation)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# Workspace domains by cloud: AWS (and GovCloud), Azure (and its sovereign clouds), GCP.
WORKSPACE_DOMAINS = (
    ".cloud.databricks.com",
    ".cloud.databricks.us",
    ".azuredatabricks.net",
    ".databricks.azure.us",
    ".databricks.azure.cn",
    ".gcp.databricks.com",
)
EXAMPLE = "https://acme-dev.cloud.databricks.com"


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def check_workspace_url(value: str, *, strip_trailing_slash: bool) -> str:
    """Return the URL without a trailing slash, or raise ValueError saying what is wrong and
    how to fix it. ``strip_trailing_slash=False`` refuses a trailing slash instead."""
    text = value.strip()
    if text != value:
        raise ValueError("has leading or trailing spaces (remove them)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc} (write it like {EXAMPLE})") from None
    hostname = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not hostname:
        raise ValueError(f"must be a workspace URL such as {EXAMPLE} (got {value!r})")
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password (credentials never go in the URL)")
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment (use just {parts.scheme}://{parts.netloc})")
    if parts.path not in ("", "/"):
        raise ValueError(
            f"must be the workspace's address with no path (use {parts.scheme}://{parts.netloc})"
        )
    if parts.path == "/" and not strip_trailing_slash:
        raise ValueError(
            f"must not end with '/': Braintrust appends paths to it (use {parts.scheme}://{parts.netloc})"
        )
    if parts.scheme == "http":
        if not _is_loopback(hostname):
            raise ValueError(
                "must use https:// (plain http:// is only allowed on a loopback address "
                "such as http://127.0.0.1:8787, for the local emulator)"
            )
    elif not hostname.endswith(WORKSPACE_DOMAINS) and not _is_loopback(hostname):
        raise ValueError(
            f"host {hostname!r} is not a Databricks workspace: expected a name ending in "
            + ", ".join(WORKSPACE_DOMAINS)
            + f" (for example {EXAMPLE})"
        )
    if port is not None and parts.scheme == "https" and port != 443 and not _is_loopback(hostname):
        raise ValueError(f"must not name a port for a cloud workspace (use https://{hostname})")
    return f"{parts.scheme}://{parts.netloc}"
