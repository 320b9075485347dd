"""Moved to `testing.provider`; this re-export keeps older imports working."""

from testing.provider import (  # noqa: F401 - re-exported
    PROJECT,
    PROVIDER_KEY,
    ROOT,
    STACK,
    Engine,
    ProviderCallError,
    ProviderProcess,
    State,
    Step,
    first_line,
    provider_string,
    stop_process,
)
