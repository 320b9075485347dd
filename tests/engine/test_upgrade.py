"""Existing stacks upgrade in place: a stack deployed by earlier code (state and workspace
recorded by record_upgrade_fixture.py), then `up` with today's code, replaces nothing and
writes nothing. A renamed resource type or component must carry the old name as an alias."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from testing.engine.props import secret, strip_secrets

from components.plan import SWEEP_NAME
from testing.emulator import EmulatorProcess, free_port
from testing.engine import StackEngine
from testing.stacks import ADMIN_TOKEN, BRAINTRUST_API_KEY, ROOT, emulator_config

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("upgrade-*"))
HOST = "{{HOST}}"


def load_state(text: str) -> str:
    """The recorded state with the Braintrust record's hash computed again, as the recording
    code computed it (sha256 of the sorted JSON): the record holds the emulator's URL, which
    differs per run, and a placeholder for the OAuth secret."""
    state = json.loads(text)
    for resource in state["resources"]:
        for props in (resource["inputs"], resource["outputs"]):
            if "record" in props and "record_hash" in props:
                record = strip_secrets(props["record"])
                digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
                props["record_hash"] = secret(digest)
    return json.dumps(state)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_a_stack_deployed_by_earlier_code_is_adopted_with_no_replacement_and_no_write(
        fixture: Path, tmp_path: Path) -> None:
    recorded = json.loads((fixture / "recorded.json").read_text())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "emulator.json").write_text((fixture / "emulator.json").read_text().replace(HOST, url))
    (tmp_path / "state.json").write_text(load_state((fixture / "state.json").read_text().replace(HOST, url)))
    (tmp_path / "state.json").chmod(0o600)
    stack_file = ROOT / recorded["stack_file"]
    with EmulatorProcess(ADMIN_TOKEN, ready_after=0.2, braintrust_api_key=BRAINTRUST_API_KEY,
                         port=port, extra_args=["--state", str(tmp_path / "emulator.json")]
                         ) as emulator:
        assert emulator.url == url
        config, secrets = emulator_config(stack_file, emulator, **recorded["overrides"])
        engine = StackEngine(stack_file, tmp_path / "state.json", config=config, secrets=secrets)
        before = set(engine.state.resources)
        emulator.clear_requests()
        result = engine.up()

        ops = result.ops()
        # One resource is new since: the sweep of orphan secrets, which reads and, with none
        # there, writes nothing.
        assert {n: op for n, op in ops.items() if op != "same"} == {SWEEP_NAME: "create"}, ops
        writes = [r for r in emulator.requests() if r["method"] != "GET"]
        assert writes == []
        # Every resource the old state held is still there, under its new URN if renamed.
        assert len(engine.state.resources) == len(before) + 1

        # Refresh reads every resource from the old outputs (the providers unpickled from the
        # old state, without __init__): all still there, nothing written; and an `up` after it
        # still changes nothing.
        emulator.clear_requests()
        refreshed = engine.refresh()
        assert {op for op in refreshed.ops().values()} == {"refresh"}, refreshed.ops()
        assert [r for r in emulator.requests() if r["method"] != "GET"] == []
        again = engine.up()
        assert not {n: op for n, op in again.ops().items() if op != "same"}, again.ops()
        assert [r for r in emulator.requests() if r["method"] != "GET"] == []

        # Destroy deletes what the old stack made, from the outputs it recorded.
        custom = {urn: st for urn, st in engine.state.resources.items() if st.custom}
        ours = [st.outputs["name"] for st in custom.values()
                if st.type.endswith(":Endpoint") and st.outputs.get("mode") != "pay_per_token"]
        engine.destroy()
        assert engine.state.resources == {}
        w = emulator.workspace_client()
        left = {ep.name for ep in w.serving_endpoints.list()}
        assert ours and not set(ours) & left
        principal = next(st for st in custom.values() if st.type.endswith(":ServicePrincipal"))
        principal_id = strip_secrets(principal.outputs)["principal_id"]
        assert not list(w.service_principals.list(filter=f'id eq "{principal_id}"'))
