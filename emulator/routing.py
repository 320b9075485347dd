"""Request/response values and the routes table (like moto's urls.py): each API family module
exposes ``ROUTES``, a list of ``Route``s; the server matches them in order."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .errors import ApiError, bad_request

if TYPE_CHECKING:
    from .models import Principal, Workspace


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    base_url: str  # scheme://host:port the client used, for URLs the emulator hands out
    params: dict[str, str] = field(default_factory=dict)
    principal: Principal | None = None
    raw_path: str = ""  # the path as sent (before percent-decoding), for strict path checks

    @property
    def caller(self) -> Principal:
        """The authenticated principal; the server resolves it before any workspace route."""
        if self.principal is None:
            raise ApiError(401, "UNAUTHENTICATED", "Credential was not sent for this API.")
        return self.principal

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> dict[str, Any]:
        if not self.raw_body.strip():
            return {}
        try:
            data = json.loads(self.raw_body, parse_constant=_not_json)
        except UnicodeDecodeError:  # a ValueError without .msg: the body is not UTF-8
            raise bad_request("Malformed request: the body is not valid UTF-8") from None
        except json.JSONDecodeError as e:
            raise bad_request(f"Malformed request: invalid JSON body ({e.msg})") from None
        except RecursionError:
            raise bad_request("Malformed request: the JSON body is nested too deeply") from None
        except ValueError as e:  # NaN/Infinity, or an integer past Python's 4300-digit limit
            raise bad_request(f"Malformed request: invalid JSON body ({str(e)[:80]})") from None
        if not isinstance(data, dict):
            raise bad_request("Malformed request: the JSON body must be an object")
        return data

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.raw_body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


def _not_json(word: str) -> Any:
    """Python's json reads NaN and Infinity; JSON, and the real service's parser, do not."""
    raise ValueError(f"{word} is not a JSON value")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a pre-encoded body (server-sent events)
    content_type: str = "application/json"
    lost: bool = False  # a lost-answer fault: close the connection instead of answering


# Who may call a route:
#   "public"    no credentials (discovery documents, the token endpoint checks its own)
#   "workspace" a Databricks PAT or an OAuth token the emulator minted
#   "braintrust" the Braintrust API key
#   "admin"     the emulator's admin token (the /_emulator path)
AUTH_KINDS = ("public", "workspace", "braintrust", "admin")

Handler = Callable[["Workspace", Request], Response]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: str = "workspace"
    serving_scope: bool = False  # OAuth tokens need a serving scope (see auth.token_allows_serving)
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        assert self.auth in AUTH_KINDS
        self.regex = re.compile(self.pattern)


def ok(body: Any = None, status: int = 200) -> Response:
    return Response(status=status, body=body if body is not None else {})
