"""Two stacks against one workspace at once (dev-like and staging-like: their own endpoint names,
principals and Braintrust records, each through its own provider process): neither touches the
other's objects, each grant names only its own principal, and both converge."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

from components.providers.endpoint import Endpoint
from components.providers.principal import ServicePrincipal
from testing.deployment import provider_for
from tests.reliability.test_faults import ENDPOINTS

PPT = "databricks-meta-llama-3-3-70b-instruct"


def stack_config(env: str) -> dict:
    eps = copy.deepcopy(ENDPOINTS)
    for e in eps:
        if not e.get("pay_per_token"):
            e["name"] = e["name"].replace("bt-local-", f"bt-{env}-")
    return {"endpoints": eps,
            "principal": {"display_name": f"braintrust-{env}", "secret_lifetime_days": 30, "rotate_before_days": 7},
            "tags": {"owner": "ml-platform", "environment": env}}


def sp_entries(w, endpoint: str) -> set[tuple[str, str]]:
    acl = w.serving_endpoints.get_permissions(w.serving_endpoints.get(endpoint).id)
    return {(a.service_principal_name, p.permission_level.value) for a in acl.access_control_list or []
            if a.service_principal_name for p in a.all_permissions or [] if not p.inherited}


def test_dev_and_staging_created_at_once_do_not_interfere(make_run, emulator) -> None:
    procs = [provider_for(emulator), provider_for(emulator)]
    try:
        runs = {}
        for env, proc in zip(("dev", "staging"), procs, strict=True):
            cfg = stack_config(env)
            runs[env] = make_run(proc=proc, stack=env, braintrust={
                "secret_name": f"databricks-{env}", "auth_type": "service_principal_oauth", "publish": True,
                "api_url": emulator.braintrust_url}, **cfg)
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda r: r.up(), runs.values()))

        w = emulator.workspace_client()
        apps = {env: r.outputs(ServicePrincipal, r.principal_name)["application_id"] for env, r in runs.items()}
        assert apps["dev"] != apps["staging"]
        for env, run in runs.items():
            other = "staging" if env == "dev" else "dev"
            assert run.changed() == []
            assert all(s.op == "same" for s in run.up().values())
            for name in run.endpoint_names():
                entries = sp_entries(w, name)
                if name == PPT:  # shared by both stacks: one entry each
                    assert entries == {(apps["dev"], "CAN_QUERY"), (apps["staging"], "CAN_QUERY")}
                else:
                    assert entries == {(apps[env], "CAN_QUERY")}
                    assert f"bt-{other}-" not in name
        names = [e.name for e in w.serving_endpoints.list()]
        assert all(names.count(n) == 1 for r in runs.values() for n in r.endpoint_names())

        # Destroying one stack leaves the other whole, including its entry on the shared endpoint.
        runs["dev"].destroy()
        assert sp_entries(w, PPT) == {(apps["staging"], "CAN_QUERY")}
        assert all(runs["staging"].refresh().values()) and runs["staging"].changed() == []
        assert not any(n.startswith("bt-dev-") for n in (e.name for e in w.serving_endpoints.list()))
        assert runs["staging"].outputs(Endpoint, "bt-staging-churn-scorer")["endpoint_id"]
    finally:
        for p in procs:
            p.close()
