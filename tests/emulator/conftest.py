"""Fixtures for the emulator conformance tests: SDK clients against the session emulator."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

LLAMA_8B = "system.ai.meta_llama_v3_1_8b_instruct"
CHURN = "main.ml.churn_scorer"
PPT = "databricks-meta-llama-3-3-70b-instruct"
WAIT = timedelta(seconds=30)


@pytest.fixture(autouse=True)
def _no_ambient_databricks_config(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    """The SDK's unified auth must see only what a test passes, never the developer's env."""
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    yield


@pytest.fixture
def w(emulator) -> WorkspaceClient:
    return emulator.workspace_client()


def llama_config(name: str, max_tp: int = 1240, entity_name: str | None = None) -> EndpointCoreConfigInput:
    return EndpointCoreConfigInput(name=name, served_entities=[ServedEntityInput(
        name=entity_name, entity_name=LLAMA_8B, entity_version="1",
        min_provisioned_throughput=0, max_provisioned_throughput=max_tp)])


def churn_config(name: str, version: str = "3") -> EndpointCoreConfigInput:
    return EndpointCoreConfigInput(name=name, served_entities=[ServedEntityInput(
        entity_name=CHURN, entity_version=version, workload_size="Small",
        scale_to_zero_enabled=True)])


@pytest.fixture
def make_sp(w: WorkspaceClient) -> Callable[..., tuple]:
    """A service principal and an OAuth secret: (principal, secret response)."""

    def make(display_name: str = "braintrust-test", **secret_args):
        sp = w.service_principals.create(display_name=display_name)
        assert sp.id is not None
        secret = w.service_principal_secrets_proxy.create(sp.id, **secret_args)
        return sp, secret

    return make


@pytest.fixture
def sp_client(emulator) -> Callable[..., WorkspaceClient]:
    def make(sp, secret) -> WorkspaceClient:
        return WorkspaceClient(host=emulator.url, client_id=sp.application_id,
                               client_secret=secret.secret)

    return make
