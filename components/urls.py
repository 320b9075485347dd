"""The rules for the URLs a stack names: a Databricks workspace URL, shared by the stack spec and
the Braintrust record (which must carry the same URL, since the proxy builds request URLs by
concatenation), and the Braintrust API URL.

Neither rule ever quotes user information (``user:password@``) back: it is refused unseen.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import SplitResult, urlsplit

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
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _is_ip(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _split(value: str, example: str) -> SplitResult:
    """Checks every URL shares, in an order that never echoes user information."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"contains the control character U+{ord(char):04X} (remove it)")
    if value.strip() != value:
        raise ValueError("has leading or trailing spaces (remove them)")
    if any(char.isspace() for char in value):
        raise ValueError("contains a space, which no URL holds (remove it, or write it as %20)")
    authority = re.split(r"[/?#]", value.partition("://")[2], maxsplit=1)[0]
    if "@" in authority or ("@" in value and "://" not in value):
        raise ValueError("must not carry a user name or password (credentials never go in a URL; "
                         "remove the part before '@')")
    if not authority.isascii():
        raise ValueError("has non-ASCII characters in its host name, which can imitate another name "
                         "(write the host in ASCII, or in its punycode xn-- form)")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc} (write it like {example})") from None
    hostname = (parts.hostname or "").lower()
    if parts.netloc.endswith(":") or parts.port == 0:
        # `host:` would reach Braintrust as its base URL, and `:0` names no server.
        raise ValueError(f"has an empty or zero port after ':' (remove the ':', or name the port, like {example})")
    if parts.scheme not in ("https", "http") or not hostname:
        raise ValueError(f"must be a URL such as {example} (got {value[:80]!r})")
    if not _is_ip(hostname):
        if len(hostname) > 253:
            raise ValueError("has a host name longer than 253 characters (shorten it)")
        labels = hostname.split(".")
        if any(not label for label in labels):
            raise ValueError(f"host {hostname!r} has an empty label: two dots in a row, or a dot at the "
                             "start or end (remove the extra dot)")
        bad = next((label for label in labels if not _LABEL.fullmatch(label)), None)
        if bad is not None:
            raise ValueError(f"host {hostname!r} is not a valid DNS name: label {bad!r} may hold only letters, "
                             "digits and inner '-', at most 63 characters (fix the host name)")
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment (remove what follows {parts.scheme}://{parts.netloc}"
                         f"{parts.path})")
    return parts


def check_workspace_url(value: str, *, strip_trailing_slash: bool) -> str:
    """Return the URL without a trailing slash, or raise ValueError saying what is wrong and
    how to fix it. ``strip_trailing_slash=False`` refuses a trailing slash instead."""
    parts = _split(value, EXAMPLE)
    hostname = (parts.hostname or "").lower()
    if parts.path not in ("", "/"):
        raise ValueError(
            f"must be the workspace's address with no path (use {parts.scheme}://{parts.netloc})"
        )
    if parts.path == "/" and not strip_trailing_slash:
        raise ValueError(
            f"must not end with '/': Braintrust appends paths to it (use {parts.scheme}://{parts.netloc})"
        )
    if parts.scheme == "http":
        if not is_loopback(hostname):
            raise ValueError(
                "must use https:// (plain http:// is only allowed on a loopback address "
                "such as http://127.0.0.1:8787, for the local emulator)"
            )
    elif not hostname.endswith(WORKSPACE_DOMAINS) and not is_loopback(hostname):
        raise ValueError(
            f"host {hostname!r} is not a Databricks workspace: expected a name ending in "
            + ", ".join(WORKSPACE_DOMAINS)
            + f" (for example {EXAMPLE})"
        )
    if parts.port is not None and not is_loopback(hostname):
        raise ValueError(f"must not name a port for a cloud workspace (use {parts.scheme}://{hostname})")
    return f"{parts.scheme}://{parts.netloc}"


def check_api_url(value: str) -> str:
    """A Braintrust API base URL (hosted, self-hosted, or the local emulator's): https, or http on
    loopback. Returned without a trailing slash."""
    parts = _split(value, "https://api.braintrust.dev")
    hostname = (parts.hostname or "").lower()
    if parts.scheme == "http" and not is_loopback(hostname):
        raise ValueError(
            "must use https:// (plain http:// would send the Braintrust API key in clear; it is only "
            "allowed on a loopback address such as http://127.0.0.1:8787/braintrust)"
        )
    return value.rstrip("/")
