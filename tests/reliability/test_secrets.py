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
from testing.engine.props import redact

from components.providers.principal import ServicePrincipal
from components.spec import QUERY_SCOPES
from testing.deployment import Deployment
from testing.engine import EngineError
from testing.provider import ProviderCallError
from testing.stacks import ROOT

PAT = "dapi-known-pat-do-not-print-7c1e9a"
PPT = "databricks-meta-llama-3-3-70b-instruct"


def cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "components", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})
    return done.returncode, done.stdout + done.stderr


def plain_state(run: Deployment) -> str:
    """The state file as the engine stores it, what it marks secret taken out (the real engine
    encrypts those): secretness has to have come through from the program and the resources'
    additional_secret_outputs."""
    return json.dumps(redact(json.loads(run.state_file.read_text())))


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
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())
    doc["config"]["databricks-braintrust:workspace"] = {"host": emulator.url}
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
    # A second stack whose record carries a PAT (only Databricks' own endpoint: nothing to make).
    pat_run = make_run(stack="localpat", secrets={"braintrust_pat": PAT}, endpoints=[
        {"name": PPT, "pay_per_token": True}], principal={
        "display_name": "braintrust-localpat", "secret_lifetime_days": 30, "rotate_before_days": 7},
        braintrust={"secret_name": "databricks-local-pat", "auth_type": "pat", "publish": True,
                    "api_url": emulator.braintrust_url})
    pat_run.up()
    client_secrets = {run.outputs(*_secret(run))["client_secret"]}

    # The grant reads its ACL before it writes (issue 21): the refused call is that read.
    emulator.inject_fault("*", r"^/api/2\.0/permissions/", 403, count=1)
    run.forget(*_grant(run))
    with pytest.raises(EngineError) as err:
        run.up()
    seen["provider error"] = str(err.value) + "\n".join(
        e.details for e in err.value.errors if isinstance(e, ProviderCallError))
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
    for name, record in (("oauth", run.export("braintrust_provider")),
                         ("pat", pat_run.export("braintrust_provider"))):
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


def _secret(run: Deployment) -> tuple[type, str]:
    from components.providers.oauth_secret import OAuthSecret

    return OAuthSecret, run.secret_name


def _grant(run: Deployment) -> tuple[type, str]:
    from components.providers.grant import QueryGrant

    return QueryGrant, run.grant_name("bt-local-llama-3-1-8b")
