"""Rules across stacks: what no single file can show wrong."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from components.spec.fields import nfc
from components.spec.problems import Problem
from components.spec.stack import Stack


def _organization(stack: Stack) -> tuple[str, str | None]:
    """Which Braintrust organization a stack publishes to: its API (scheme and host compared
    without case, the scheme's default port as none, path without a trailing slash) and
    org_name, where none means the key's default organization."""
    parts = urlsplit(stack.spec.braintrust.api_url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    # The scheme's own port is the same origin as no port: https://api.braintrust.dev:443.
    port = "" if parts.port in (None, {"https": 443, "http": 80}.get(scheme)) else f":{parts.port}"
    host = f"[{host}]" if ":" in host else host
    api = f"{scheme}://{host}{port}{parts.path.rstrip('/')}"
    return api, stack.spec.braintrust.org_name


def check_across(stacks: Sequence[Stack]) -> list[Problem]:
    """Two stacks giving the same secret_name to the same Braintrust organization would overwrite
    each other's record: on every `pulumi up` when they publish it, or when someone pastes a
    stack's record by hand (publish: false). A copied file is the usual cause, so it is refused
    whether or not either stack publishes."""
    problems: list[Problem] = []
    first: dict[tuple[str, str | None, str], Stack] = {}
    for stack in stacks:
        settings = stack.spec.braintrust
        api, org = _organization(stack)
        # Compared in NFC: composed and decomposed accents are one name in Braintrust's list.
        key = (api, nfc(org) if org else org, nfc(settings.secret_name))
        other = first.setdefault(key, stack)
        if other is stack:
            continue
        where = f"{api}, organization {org!r}" if org else f"{api}, the API key's default organization"
        same = "" if other.spec.braintrust.secret_name == settings.secret_name else (
            " (written with other Unicode characters: composed against decomposed accents)")
        problems.append(Problem(stack.file, "braintrust.secret_name", (
            f"{settings.secret_name!r} is also the secret_name of {other.file}{same} in the same Braintrust "
            f"organization ({where}); each stack's record would overwrite the other's (give each stack its own "
            "secret_name, e.g. databricks-<stack>)"
        )))
    return problems
