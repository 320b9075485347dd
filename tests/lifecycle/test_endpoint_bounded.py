"""BoundedApi: the provider's transport that ends every call by its deadline, whatever the
workspace answers, and never re-sends a create whose answer was lost."""

from __future__ import annotations

import time

import pytest
from databricks.sdk.errors import NotFound
from databricks.sdk.service.serving import ServingEndpointsAPI

from components.providers._client import BoundedApi, DeadlineExceeded


def test_bounded_call_reads_like_the_sdk(emulator) -> None:
    api = BoundedApi.within(emulator.workspace_client(), 30).service(ServingEndpointsAPI)
    names = [ep.name for ep in api.list()]
    assert "databricks-meta-llama-3-3-70b-instruct" in names
    with pytest.raises(NotFound):
        api.get("no-such-endpoint")


def test_bounded_call_ends_by_its_deadline_under_a_stream_of_503s(emulator) -> None:
    # Retry-After far beyond the budget: the SDK would sleep it out, the bounded call gives up.
    emulator.inject_fault("GET", "/api/2.0/serving-endpoints", 503, count=1000, retry_after=3600)
    api = BoundedApi.within(emulator.workspace_client(), 2).service(ServingEndpointsAPI)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        list(api.list())
    # A correctness bound, not a timing measurement: the deadline plus the documented 10 s.
    assert time.monotonic() - started < 2 + 10
    assert "503" in str(info.value) or "TemporarilyUnavailable" in str(info.value)


def test_bounded_call_retries_a_short_burst_of_503s(emulator) -> None:
    emulator.inject_fault("GET", "/api/2.0/serving-endpoints", 503, count=2, retry_after=None)
    api = BoundedApi.within(emulator.workspace_client(), 30).service(ServingEndpointsAPI)
    assert any(ep.name for ep in api.list())
