"""Endpoint writes whose answer is lost (the emulator handles the request, then closes the
connection): no duplicate, no stray endpoint, and state equal to the workspace."""

from __future__ import annotations

from typing import Any

import pytest

from components.providers.endpoint import Endpoint, EndpointProvider
from testing.provider import Engine, ProviderCallError
from tests.lifecycle.conftest import Target
from tests.lifecycle.test_lifecycle import endpoint_inputs

CREATE = r"^/api/2\.0/serving-endpoints$"


def _lose(target: Target, method: str, path: str, count: int = 1) -> None:
    target.emulator.admin("POST", "faults", {"kind": "lost-answer", "method": method,
                                             "path": path, "count": count})


def _state_matches_workspace(target: Target, outs: dict[str, Any]) -> None:
    ep = target.client().serving_endpoints.get(outs["name"])
    assert ep.id == outs["endpoint_id"]
    tags = {t.key: t.value for t in ep.tags or []}
    assert all(tags.get(k) == v for k, v in outs["tags"].items())
    cfg = ep.pending_config or ep.config
    assert cfg is not None
    served = {(e.name, e.entity_name, e.entity_version) for e in cfg.served_entities or []}
    assert served == {(e["name"], e["entity_name"], str(e["entity_version"]))
                      for e in outs["served_entities"]}


def test_a_lost_answer_to_the_create_leaves_one_endpoint_recorded_as_it_is(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    _lose(target, "POST", CREATE)
    before = len(target.emulator.requests())
    step = engine.register(Endpoint, EndpointProvider, "churn", inputs)
    assert step.op == "create"
    names = [e.name for e in target.client().serving_endpoints.list()]
    assert names.count(inputs["name"]) == 1
    _state_matches_workspace(target, step.outputs)
    creates = [r for r in target.emulator.requests()[before:]
               if r["method"] == "POST" and r["path"] == "/api/2.0/serving-endpoints"]
    # looked up after the lost answer and adopted: never sent a second time
    assert creates[0].get("lost") is True and len(creates) == 1


def test_lost_answers_to_every_create_attempt_still_adopt_within_the_same_create(
        target: Target, engine: Engine) -> None:
    # Every create answer lost: the create looks the endpoint up before sending again, so the
    # one its first attempt made is adopted in this operation (never left for the next `up`),
    # and the create is not sent a second time.
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    _lose(target, "POST", CREATE, count=100)
    before = len(target.emulator.requests())
    step = engine.register(Endpoint, EndpointProvider, "churn", inputs)
    assert step.op == "create"
    assert [e.name for e in target.client().serving_endpoints.list()].count(inputs["name"]) == 1
    _state_matches_workspace(target, step.outputs)
    creates = [r for r in target.emulator.requests()[before:]
               if r["method"] == "POST" and r["path"] == "/api/2.0/serving-endpoints"]
    assert len(creates) == 1 and creates[0].get("lost") is True


def test_a_lost_answer_to_the_delete_still_deletes_once(target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    engine.register(Endpoint, EndpointProvider, "churn", inputs)
    _lose(target, "DELETE", r"^/api/2\.0/serving-endpoints/")
    engine.destroy(Endpoint, "churn")
    assert inputs["name"] not in [e.name for e in target.client().serving_endpoints.list()]
    assert engine.urn(Endpoint, "churn") not in engine.state


def _swallow_deletes(target: Target, count: int) -> None:
    target.emulator.admin("POST", "faults", {"kind": "swallowed", "method": "DELETE",
                                             "path": r"^/api/2\.0/serving-endpoints/",
                                             "count": count})


def test_a_delete_acknowledged_but_never_applied_is_sent_again_until_the_endpoint_is_gone(
        target: Target, engine: Engine) -> None:
    """Before, destroy ended on the 200 alone: state forgot an endpoint the workspace still
    held (found by an outside fault drive of `destroy` under swallowed answers)."""
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    engine.register(Endpoint, EndpointProvider, "churn", inputs)
    _swallow_deletes(target, 1)
    engine.destroy(Endpoint, "churn")
    assert inputs["name"] not in [e.name for e in target.client().serving_endpoints.list()]


def test_deletes_never_applied_fail_the_step_saying_so(target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    engine.register(Endpoint, EndpointProvider, "churn", inputs)
    _swallow_deletes(target, 3)
    with pytest.raises(ProviderCallError) as err:
        engine.destroy(Endpoint, "churn")
    assert "serving endpoint not deleted" in err.value.message
    assert inputs["name"] in [e.name for e in target.client().serving_endpoints.list()]


def test_a_lost_answer_to_a_config_update_is_sent_again_and_converges(
        target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    engine.register(Endpoint, EndpointProvider, "churn", inputs)
    target.emulator.set_ready_after(0)  # the first rollout is over before the update
    target.client().serving_endpoints.wait_get_serving_endpoint_not_updating(inputs["name"])
    bigger = {**inputs, "served_entities": [{**inputs["served_entities"][0],
                                             "workload_size": "Medium"}]}
    _lose(target, "PUT", r"/config$")
    step = engine.register(Endpoint, EndpointProvider, "churn", bigger)
    assert step.op == "update"
    _state_matches_workspace(target, step.outputs)
    ep = target.client().serving_endpoints.get(inputs["name"])
    cfg = ep.pending_config or ep.config
    assert cfg is not None and cfg.served_entities is not None
    assert cfg.served_entities[0].workload_size == "Medium"


def _swallow_gateway_puts(target: Target, count: int) -> None:
    target.emulator.admin("POST", "faults", {"kind": "swallowed", "method": "PUT",
                                             "path": r"^/api/2\.0/serving-endpoints/[^/]+/ai-gateway$",
                                             "count": count})


LIMIT = {"calls": 7, "renewal_period": "minute", "key": "endpoint"}


def test_an_ai_gateway_write_acknowledged_but_never_applied_is_sent_again(
        target: Target, engine: Engine) -> None:
    """Before, state recorded the limits on the 200 alone while the workspace held none, and the
    next `up` found nothing to do (found by an outside fault drive under swallowed answers)."""
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    engine.register(Endpoint, EndpointProvider, "churn", inputs)
    _swallow_gateway_puts(target, 1)
    step = engine.register(Endpoint, EndpointProvider, "churn", {**inputs, "rate_limits": [LIMIT]})
    assert step.op == "update"
    gateway = target.client().serving_endpoints.get(inputs["name"]).ai_gateway
    assert gateway is not None and [(r.calls, r.key.value if r.key else None)
                                    for r in gateway.rate_limits or []] == [(7, "endpoint")]


def test_ai_gateway_writes_never_applied_fail_the_step_saying_so(target: Target, engine: Engine) -> None:
    target.needs_emulator()
    inputs = endpoint_inputs(target)
    engine.register(Endpoint, EndpointProvider, "churn", inputs)
    _swallow_gateway_puts(target, 3)
    with pytest.raises(ProviderCallError) as err:
        engine.register(Endpoint, EndpointProvider, "churn", {**inputs, "rate_limits": [LIMIT]})
    assert "the AI Gateway was not applied" in err.value.message
