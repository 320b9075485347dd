"""No secret escapes: the whole lifecycle and the CLI run with known secret values, and everything
the project writes or prints is scanned for them. The query principal's credentials are as
narrow as querying allows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.providers.ai_secret import SECRET_OUTPUTS as AI_SECRET_OUTPUTS
from components.providers.ai_secret import AiSecret
from components.providers.oauth_secret import SECRET_OUTPUTS as OAUTH_SECRET_OUTPUTS
from components.providers.principal import ServicePrincipal
from components.spec import QUERY_SCOPES
from tests.lifecycle.harness import ProviderCallError
from tests.stackrun import ROOT, StackRun, stack_document

PAT = "dapi-known-pat-do-not-print-7c1e9a"
# Outputs the resources declare secret (additional_secret_outputs): the engine encrypts them.
SECRET_OUTPUT_KEYS = {*OAUTH_SECRET_OUTPUTS, *AI_SECRET_OUTPUTS}


def cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "components", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})
    return done.returncode, done.stdout + done.stderr


def plain_state(run: StackRun) -> str:
    """Every output and input the engine would store in plain text."""
    plain = []
    for st in run.engine.state.values():
        plain.append({k: v for k, v in st.outputs.items() if k not in SECRET_OUTPUT_KEYS})
        plain.append({k: v for k, v in st.inputs.items() if k not in SECRET_OUTPUT_KEYS})
    return json.dumps(plain, default=str)


def token_scope(emulator: Any, client_id: str, client_secret: str) -> str:
    """What Braintrust's proxy asks for (scope=all-apis), and the scope the token really got."""
    req = urllib.request.Request(
        f"{emulator.url}/oidc/v1/token", method="POST",
        data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "all-apis"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    import base64

    req.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["scope"]


def test_whole_lifecycle_and_cli_never_print_or_store_a_secret_in_plain_text(
        make_run, emulator, shared_proc, tmp_path: Path) -> None:
    known = {"admin token": emulator.admin_token, "Braintrust key": emulator.braintrust_api_key, "PAT": PAT}
    seen: dict[str, str] = {}  # where -> text, scanned at the end
    env = {"DATABRICKS_HOST": emulator.url, "DATABRICKS_TOKEN": emulator.admin_token,
           "BRAINTRUST_API_KEY": emulator.braintrust_api_key}

    # The CLI on the stack file, with every credential in its environment.
    doc = stack_document(host=emulator.url, braintrust_url=emulator.braintrust_url)
    doc["config"]["databricks-braintrust:braintrust_pat"] = {"secure": "v1:AAAAencrypted"}
    stack_file = tmp_path / "Pulumi.local.yaml"
    stack_file.write_text(yaml.safe_dump(doc))
    for args in (("validate", str(stack_file)), ("render", str(stack_file)),
                 ("render", str(stack_file), "--format", "json")):
        code, out = cli(*args, env=env)
        assert code == 0, out
        seen[" ".join(args[:1] + args[2:])] = out
    rendered = tmp_path / "plan.yaml"
    rendered.write_text(cli("render", str(stack_file), env=env)[1])

    # The whole lifecycle: OAuth stack published, a PAT record published, a failure, a rotation.
    # The churn scorer as `make up` serves it: a completions model.
    emulator.admin("POST", "models", {"name": "main.ml.churn_scorer", "version": "3",
                                      "task": "llm/v1/completions"})
    run = make_run()
    run.up()
    pat_run = make_run(stack="local", pat=PAT, braintrust_pat={"secure": "v1:AAAAencrypted"}, braintrust={
        "secret_name": "databricks-local-pat", "auth_type": "pat", "publish": True,
        "api_url": emulator.braintrust_url})
    pat_run.register(AiSecret, "databricks-local-pat")  # only the record differs
    client_secrets = {run.outputs(*_secret(run))["client_secret"]}

    emulator.inject_fault("PATCH", r"^/api/2\.0/permissions/", 403, count=1)
    del run.engine.state[run.engine.urn(*_grant(run))]
    with pytest.raises(ProviderCallError) as err:
        run.up()
    seen["provider error"] = err.value.details
    run.up()
    emulator.admin("POST", "clock", {"advance_seconds": 80 * 86400})  # expired
    run.refresh()
    steps = run.up()
    assert steps[run.secret_name].op == "replace"
    client_secrets.add(run.outputs(*_secret(run))["client_secret"])
    assert len(client_secrets) == 2
    run.refresh()
    seen["plain state"] = plain_state(run) + plain_state(pat_run)

    # verify, as a CI job runs it after `up`: the OAuth record answers, the PAT record is refused.
    for name, record in (("oauth", run.record()), ("pat", pat_run.record())):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(record))
        code, out = cli("verify", "--config", str(path), "--retries", "0", env=env)
        assert code == (0 if name == "oauth" else 1), out
        seen[f"verify {name}"] = out

    # The query principal: no entitlements, a secret with the one scope Braintrust's proxy asks for.
    w = emulator.workspace_client()
    sp = run.outputs(ServicePrincipal, run.principal_name)
    assert not w.service_principals.get(sp["principal_id"]).entitlements
    scopes = [s.scopes for s in w.service_principal_secrets_proxy.list(sp["principal_id"])]
    assert scopes == [list(QUERY_SCOPES)]
    sec = run.outputs(*_secret(run))
    assert token_scope(emulator, sec["client_id"], sec["client_secret"]) == " ".join(QUERY_SCOPES)

    run.destroy()
    seen["emulator request log"] = json.dumps(emulator.requests())
    seen["provider process stderr"] = shared_proc.stderr()
    seen["rendered file"] = rendered.read_text()

    known.update({f"client secret {i}": s for i, s in enumerate(sorted(client_secrets))})
    hits = [(where, what) for where, text in seen.items() for what, value in known.items() if value in text]
    assert hits == []
    assert seen["verify oauth"] and "3 of 3 model(s) answered" in seen["verify oauth"]


def _secret(run: StackRun) -> tuple[type, str]:
    from components.providers.oauth_secret import OAuthSecret

    return OAuthSecret, run.secret_name


def _grant(run: StackRun) -> tuple[type, str]:
    from components.providers.grant import QueryGrant

    return QueryGrant, run.grant_name("bt-local-llama-3-1-8b")
