"""Field types shared by the endpoint and stack models, with the rules every such field obeys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema

from components.spec.constants import MANAGED_BY_TAG
from components.spec.problems import FieldError

MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

# Characters that change how a value reads without being visible: C0/C1 controls (newline, NUL,
# tab, ...), every format character (zero-width, bidirectional marks, overrides and isolates,
# soft hyphen, the invisible "tag" letters U+E0000-E007F), line/paragraph separators, and lone
# surrogates. By category, not a list, so no invisible character is forgotten.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def control_character(value: str) -> str | None:
    """The first control or invisible character in ``value``, as U+XXXX, or None."""
    for char in value:
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def shown(value: str, limit: int = 64) -> str:
    """A value as a message quotes it: repr, cut short so a pasted blob never floods the output."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def check_text(value: str) -> str:
    found = control_character(value)
    if found:
        raise ValueError(f"contains the control character {found} (remove it; names are printable text)")
    if value != value.strip():
        raise ValueError("has leading or trailing spaces (remove them)")
    return value


# Every name-like field: endpoint names, display and secret names, org_name, tag keys and values.
Text = Annotated[str, AfterValidator(check_text)]


def _no_bool(value: Any) -> Any:
    # YAML reads yes/no/true/false as booleans, and pydantic would take True as 1. Numbers written
    # as text stay accepted: Pulumi hands top-level scalars to the program as strings.
    if isinstance(value, bool):
        raise ValueError("is a true/false value where a number belongs (write a number)")
    return value


Number = Annotated[int, BeforeValidator(_no_bool)]
# A price or a budget: a finite number above 0 (text is accepted, as for Number).
PositiveAmount = Annotated[float, BeforeValidator(_no_bool), Field(gt=0, allow_inf_nan=False)]


# Hyphens a reader takes for '-': hyphen, non-breaking hyphen, figure dash, en dash, minus, ...
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d", "-"))


def reserved_spelling(key: str) -> bool:
    """Whether a tag key reads as the reserved ownership key: in any case, with spaces around it,
    in full-width letters (NFKC) or with a look-alike hyphen."""
    return unicodedata.normalize("NFKC", key).translate(_DASHES).strip().casefold() == MANAGED_BY_TAG


def nfc(text: str) -> str:
    """The form names and keys are compared in: "é" typed as one character or as "e" and a
    combining accent (NFC against NFD) is one name to a reader, and to the workspace that
    shows it. Only compared in this form; what the file says is what is sent and stored, so a
    deployed stack sees no write."""
    return unicodedata.normalize("NFC", text)


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tag rules, each refusal at the tag's own key (``tags.<key>``)."""
    seen: dict[str, str] = {}
    for key, value in tags.items():
        other = seen.setdefault(nfc(key), key)
        if other != key:
            raise FieldError((key,), (
                f"is the tag key {other!r} written with other Unicode characters (composed against "
                "decomposed accents): the two read as one key (keep one, written one way)"
            ))
        found = control_character(key)
        if found:
            raise FieldError((key,), f"the tag key contains the control character {found} (remove it)")
        if not key.strip() or len(key) > 255:
            raise FieldError((key,), "a tag key must be 1 to 255 characters (shorten or name it)")
        if reserved_spelling(key):
            raise FieldError((key,), (
                "is reserved: the project sets this tag to mark the stack's own endpoints "
                "(remove it, or use another key such as owner)"
            ))
        found = control_character(value)
        if found:
            raise FieldError((key,), f"the value contains the control character {found} (remove it)")
        if len(value) > 255:
            raise FieldError((key,), "the value is over 255 characters (shorten it)")
    return dict(tags)


def _version_text(value: Any) -> Any:
    # A YAML number as written (`version: 3`); the API wants the string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_VERSION = re.compile(r"[0-9]{1,18}")


def _positive_version(value: str) -> str:
    if not _VERSION.fullmatch(value) or int(value) < 1:
        found = control_character(value)
        what = f"a value with the control character {found}" if found else shown(value)
        raise ValueError(f"{what} is not a model version (use a positive number such as \"3\")")
    return value


# The schema takes a number too, as validate does (`version: 3`).
ModelVersion = Annotated[
    str,
    BeforeValidator(_version_text),
    AfterValidator(_positive_version),
    WithJsonSchema({"type": ["string", "integer"]}),
]
