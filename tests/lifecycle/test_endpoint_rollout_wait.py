"""An update that must first wait for a rollout in progress ends by that wait's deadline,
whatever the workspace answers (in-process provider, so the deadline can be made short)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

from components.providers import endpoint
from components.providers._client import Credentials
from components.providers._errors import WaitTimeout
from components.providers.endpoint import EndpointProvider

SLACK = 10.0  # issue 10's bound: the deadline plus this


def test_an_update_waiting_for_a_rollout_ends_by_its_deadline_under_503s(
        emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.set_ready_after(3600)  # the first rollout never ends during the test
    entity = {"name": "churn", "entity_name": "main.ml.churn_scorer", "entity_version": "3",
              "workload_size": "Small", "scale_to_zero_enabled": True}
    emulator.workspace_client().serving_endpoints.create(
        "rolling", config=EndpointCoreConfigInput(
            name="rolling", served_entities=[ServedEntityInput.from_dict(entity)]))
    olds: dict[str, Any] = {"name": "rolling", "mode": "custom", "served_entities": [entity], "traffic": None,
            "tags": {}, "rate_limits": [], "usage_tracking": False, "route_optimized": False}
    news = {**olds, "served_entities": [{**entity, "workload_size": "Medium"}]}
    provider = EndpointProvider()
    provider._creds = Credentials(host=emulator.url, token=emulator.admin_token)
    monkeypatch.setattr(endpoint, "ROLLOUT_WAIT_SECONDS", 3.0)
    # The update's first read succeeds (it sees the rollout); every later read answers 503
    # with a Retry-After far past the deadline.
    emulator.inject_fault("GET", "^/api/2.0/serving-endpoints/rolling$", 503, count=100000,
                          offset=1, retry_after=3600)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as err:
        provider.update("rolling", olds, news)
    assert time.monotonic() - started < 3.0 + SLACK
    text = str(err.value)
    assert "rollout in progress" in text and "endpoint rolling" in text
    assert "did not answer" in text
    writes = [r for r in emulator.requests() if r["method"] not in ("GET", "POST")]
    assert writes == []  # nothing was changed while the rollout ran
