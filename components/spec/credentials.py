"""Credential detection: a credential written in plain text in a stack file is refused at its
field, and never echoed back in any message."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from components.spec.constants import PROJECT, SECRET_KEYS

_CREDENTIAL_KEY = re.compile(
    r"(token|password|passwd|api_?key|client_secret|private_key|^pat$|^secret$|credential)", re.I
)
WHERE_SECRETS_GO = (
    "credentials are set with `pulumi config set --secret "
    + PROJECT + ":<key>`, key one of " + ", ".join(SECRET_KEYS)
)
# Shapes of Databricks PATs and OAuth secrets, Braintrust/OpenAI keys, JWTs and PEM keys.
# Every pattern is linear in the value: a JWT is matched only where a run of token characters
# starts, and its first part possessively, so a long value of repeated `eyJ` is read once, not
# once per occurrence (which made a 60 KB tag value take seconds).
_CREDENTIAL_VALUE = re.compile(
    r"(dapi[0-9a-f]{32}|dose[0-9a-f]{32}|\bsk-[A-Za-z0-9_-]{16,}"
    r"|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}+\.[A-Za-z0-9_-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY)"
)


# A URL's user information (`scheme://user:password@host`): wherever it appears, it is refused
# and never shown back.
# Anchored on `//`, not on an optional scheme before it: that optional prefix made the search
# quadratic in a long value (every letter a candidate scheme start).
_URL_USERINFO = re.compile(r"//[^/?#\s]*@")


def redact(text: str) -> str:
    """A backstop: whatever a message quotes, a credential-shaped value never reaches the output."""
    text = _URL_USERINFO.sub("//<redacted>@", text)
    return _CREDENTIAL_VALUE.sub("<redacted>", text)


def userinfo_paths(value: Any, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every string, key or value, that holds a URL with user information."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _URL_USERINFO.search(key):
                found.append(loc)
            found.extend(userinfo_paths(item, (*loc, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(userinfo_paths(item, (*loc, index)))
    elif isinstance(value, str) and _URL_USERINFO.search(value):
        found.append(loc)
    return found


def looks_like_credential_key(key: str, known_fields: Collection[str]) -> bool:
    # Our own fields (pay_per_token, secret_name, ...) are not credentials.
    return key not in known_fields and bool(_CREDENTIAL_KEY.search(key))


def credential_paths(value: Any, known_fields: Collection[str],
                     loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths where a credential is written in plain text: a credential-named key with a plain
    value, or a value or a map key shaped like a Databricks or Braintrust token anywhere."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return found
        for key, item in value.items():
            if isinstance(key, str) and _CREDENTIAL_VALUE.search(key):
                # A key shaped like a token (a tag key holding a PAT): refused at the map, so the
                # path never quotes it.
                found.append(loc)
                continue
            here = (*loc, key)
            if (isinstance(key, str) and looks_like_credential_key(key, known_fields)
                    and not isinstance(item, dict | list) and item not in (None, "")):
                found.append(here)
                continue
            found.extend(credential_paths(item, known_fields, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(credential_paths(item, known_fields, (*loc, index)))
    elif isinstance(value, str) and _CREDENTIAL_VALUE.search(value):
        found.append(loc)
    return found


def credential_lines(text: str, document: Any) -> list[int]:
    """Lines of a stack file's text that hold a credential-shaped value or a URL with user
    information where no parsed value does: a comment (`# databricks_token: dapi...`), which
    is committed and reviewed like the rest of the file."""
    values: set[str] = set()

    def collect(item: Any) -> None:
        if isinstance(item, dict):
            for key, child in item.items():
                collect(key)
                collect(child)
        elif isinstance(item, list):
            for child in item:
                collect(child)
        elif isinstance(item, str):
            values.add(item)

    collect(document)
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "#" not in line:
            continue
        for pattern in (_CREDENTIAL_VALUE, _URL_USERINFO):
            match = pattern.search(line, line.index("#"))
            if match and not any(match.group(0) in value for value in values):
                found.append(number)
                break
    return found
