"""`python -m components diff`: a repository with a series of commits, each diffed against the
one before, read the way a reviewer reads it: each resource's change, the downtime flags, the
Braintrust record's models, the DBU arithmetic and the exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import catalog
from components.catalog import DbuRate
from components.cli import main

ROOT = Path(__file__).resolve().parents[1]
P = "databricks-braintrust"
MISTRAL = "system.ai.mistral_7b_instruct_v0_2"
# A rate for Mistral 7B version 1 at its 970 chunk, for the arithmetic (the test's own figure).
TEST_RATE = DbuRate("chunk", 970, 24.0, source="test figure")


def base_config() -> dict[str, Any]:
    return {
        f"{P}:workspace": {"host": "https://acme-dev.cloud.databricks.com"},
        f"{P}:endpoints": [
            {"name": "bt-mistral", "foundation_model": "mistral-7b-instruct", "entity_version": "1",
             "throughput": {"min": 970, "max": 970}},
            {"name": "bt-churn", "model": {"name": "main.ml.churn", "version": "3"},
             "workload_size": "Small", "scale_to_zero": True, "flavor": "completion"},
            {"name": "bt-spare", "model": {"name": "main.ml.spare", "version": "1"}},
        ],
        f"{P}:principal": {"display_name": "bt-dev", "secret_lifetime_days": 90, "rotate_before_days": 14},
        f"{P}:braintrust": {"secret_name": "databricks-dev"},
    }


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "t@example.com")
        self.git("config", "user.name", "t")
        (path / "stacks").mkdir()

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True, text=True).stdout.strip()

    def write(self, config: dict[str, Any], stack: str = "dev") -> None:
        (self.path / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    original = catalog.dbu_rate
    monkeypatch.setattr(catalog, "dbu_rate", lambda e, v: TEST_RATE if (e, v) == (MISTRAL, "1") else original(e, v))
    monkeypatch.chdir(tmp_path)
    yield Repo(tmp_path)


def run_diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["diff", *args, "--format", "json"])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out else {}, out.err


def actions(data: dict[str, Any], stack: str = "dev") -> dict[str, tuple[str, list[str]]]:
    return {c["resource"]: (c["action"], c["fields"]) for c in data["stacks"][stack]["changes"]}


def change(repo: Repo, edit: Callable[[dict[str, Any]], None]) -> tuple[str, str]:
    before = repo.git("rev-parse", "HEAD")
    config = yaml.safe_load((repo.path / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    edit(config)
    repo.write(config)
    return before, repo.commit("change")


def endpoint(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in config[f"{P}:endpoints"] if e["name"] == name)


def test_a_series_of_commits_each_read_as_a_reviewer_reads_it(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(base_config())
    first = repo.commit("base")

    # Nothing changed: exit 0, no change listed.
    code, data, _ = run_diff(capsys, first, first)
    assert code == 0 and data["changes"] is False and actions(data) == {}

    # Double a throughput: the endpoint is updated in place, the gate waits again, nothing else.
    a, b = change(repo, lambda c: endpoint(c, "bt-mistral").update(throughput={"min": 970, "max": 1940}))
    code, data, _ = run_diff(capsys, a, b)
    assert code == 2
    assert actions(data) == {"Endpoint/bt-mistral": ("update", ["served_entities"]),
                             "EndpointsReady/dev-endpoints-ready": ("update", ["endpoints"])}
    assert data["stacks"]["dev"]["downtime"] == []
    cost = data["stacks"]["dev"]["cost"]
    assert cost["before"]["endpoints"]["bt-mistral"]["max_dbu_per_hour"] == 24.0
    assert cost["after"]["endpoints"]["bt-mistral"]["max_dbu_per_hour"] == 48.0
    assert cost["after"]["endpoints"]["bt-mistral"]["min_dbu_per_hour"] == 24.0
    # The custom models' rates are unknown: the totals say so, never 0.
    assert cost["after"]["total"]["max_dbu_per_hour"] is None
    assert cost["after"]["total"]["known_part"]["max_dbu_per_hour"] == 48.0
    assert set(cost["after"]["total"]["unknown"]) == {"bt-churn", "bt-spare"}

    # Add a model: its endpoint and grant are created, the record lists it.
    a, b = change(repo, lambda c: c[f"{P}:endpoints"].append(
        {"name": "bt-new", "model": {"name": "main.ml.new", "version": "1"}}))
    code, data, _ = run_diff(capsys, a, b)
    assert code == 2
    assert actions(data) == {"Endpoint/bt-new": ("create", []), "QueryGrant/bt-new-can-query": ("create", []),
                             "EndpointsReady/dev-endpoints-ready": ("update", ["endpoints"])}
    assert data["stacks"]["dev"]["braintrust_models"] == {"added": ["bt-new"], "removed": [], "flavor_changed": []}

    # Min to 0: cold starts.
    a, b = change(repo, lambda c: endpoint(c, "bt-mistral").update(throughput={"min": 0, "max": 1940}))
    code, data, _ = run_diff(capsys, a, b)
    assert actions(data)["Endpoint/bt-mistral"] == ("update", ["served_entities"])
    assert any("bt-mistral now scales to zero" in d and "cold start" in d for d in data["stacks"]["dev"]["downtime"])
    assert data["stacks"]["dev"]["cost"]["after"]["endpoints"]["bt-mistral"]["min_dbu_per_hour"] == 0.0

    # Rename the principal: one in-place update; its secret and grants keep their ids.
    a, b = change(repo, lambda c: c[f"{P}:principal"].update(display_name="bt-dev-renamed"))
    code, data, _ = run_diff(capsys, a, b)
    assert code == 2
    assert actions(data) == {"ServicePrincipal/query-principal": ("update", ["display_name"])}
    assert data["stacks"]["dev"]["downtime"] == []

    # Replace the secret (a new lifetime): Braintrust's stored credentials stop working.
    a, b = change(repo, lambda c: c[f"{P}:principal"].update(secret_lifetime_days=60))
    code, data, _ = run_diff(capsys, a, b)
    # The sweep follows the new secret: it runs again, after the record, for orphans.
    assert actions(data) == {"OAuthSecret/query-principal-oauth": ("replace", ["lifetime_days"]),
                             "OAuthSecretSweep/query-principal-oauth-sweep": ("update", ["live_secret_id"])}
    assert any("OAuth secret is replaced" in d and "published again" in d for d in data["stacks"]["dev"]["downtime"])

    # Rename an endpoint: a new endpoint and grant, the old ones deleted; the record moves.
    def rename(c: dict[str, Any]) -> None:
        endpoint(c, "bt-spare")["name"] = "bt-spare-2"
    a, b = change(repo, rename)
    code, data, _ = run_diff(capsys, a, b)
    got = actions(data)
    assert got["Endpoint/bt-spare-2"] == ("create", []) and got["Endpoint/bt-spare"] == ("delete", [])
    assert got["QueryGrant/bt-spare-2-can-query"] == ("create", [])
    assert got["QueryGrant/bt-spare-can-query"] == ("delete", [])
    models = data["stacks"]["dev"]["braintrust_models"]
    assert models["added"] == ["bt-spare-2"] and models["removed"] == ["bt-spare"]
    assert any("bt-spare is deleted" in d for d in data["stacks"]["dev"]["downtime"])

    # Switch an endpoint between a custom and a foundation model: whatever the endpoint's replace
    # keys say (components/args.py), the grant follows: replaced with it, or untouched.
    from components.args import ENDPOINT

    def switch(c: dict[str, Any]) -> None:
        c[f"{P}:endpoints"] = [e for e in c[f"{P}:endpoints"] if e["name"] != "bt-churn"] + [
            {"name": "bt-churn", "foundation_model": "mistral-7b-instruct", "entity_version": "1",
             "throughput": {"min": 0, "max": 970}}]
    a, b = change(repo, switch)
    code, data, _ = run_diff(capsys, a, b)
    got = actions(data)
    if "mode" in ENDPOINT.replace_keys:
        assert got["Endpoint/bt-churn"] == ("replace", ["mode"])
        assert got["QueryGrant/bt-churn-can-query"] == ("replace", ["endpoint_id"])
        assert any("bt-churn is replaced" in d for d in data["stacks"]["dev"]["downtime"])
    else:
        assert got["Endpoint/bt-churn"][0] == "update"
        assert "QueryGrant/bt-churn-can-query" not in got
    assert data["stacks"]["dev"]["braintrust_models"]["flavor_changed"] == ["bt-churn"]  # completion -> chat
    assert data["stacks"]["dev"]["cost"]["after"]["endpoints"]["bt-churn"]["max_dbu_per_hour"] == 24.0

    # Remove an endpoint: it and its grant are deleted, its model stops answering.
    a, b = change(repo, lambda c: c.update({f"{P}:endpoints": [
        e for e in c[f"{P}:endpoints"] if e["name"] != "bt-new"]}))
    code, data, _ = run_diff(capsys, a, b)
    assert actions(data) == {"QueryGrant/bt-new-can-query": ("delete", []), "Endpoint/bt-new": ("delete", []),
                             "EndpointsReady/dev-endpoints-ready": ("update", ["endpoints"])}
    assert data["stacks"]["dev"]["braintrust_models"]["removed"] == ["bt-new"]
    assert any("bt-new is deleted" in d and "stops answering" in d for d in data["stacks"]["dev"]["downtime"])


def test_head_defaults_to_the_work_tree(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(base_config())
    first = repo.commit("base")
    config = base_config()
    config[f"{P}:tags"] = {"team": "ml"}
    repo.write(config)  # not committed
    code, data, _ = run_diff(capsys, first)
    assert code == 2 and data["head"] == "work tree"
    got = actions(data)
    assert got["Endpoint/bt-mistral"] == ("update", ["tags"])
    assert all(action == "update" for action, _ in got.values())


def test_a_stack_on_one_side_only_is_a_whole_stack_create_or_delete(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(base_config())
    first = repo.commit("base")
    repo.write(base_config(), stack="prod-eu")  # a production stack: invalid without an owner tag
    config = base_config()
    config[f"{P}:tags"] = {"owner": "ml"}
    config[f"{P}:braintrust"] = {"secret_name": "databricks-qa"}
    repo.write(config, stack="qa")
    second = repo.commit("two more")
    code, data, err = run_diff(capsys, first, second)
    assert code == 1  # prod-eu is invalid
    assert "prod-eu" in data["stacks"] and "tags.owner" in " ".join(data["stacks"]["prod-eu"]["problems"])
    assert "tags.owner" in err
    qa = data["stacks"]["qa"]
    assert qa["whole_stack"] == "create" and {c["action"] for c in qa["changes"]} == {"create"}
    assert data["stacks"]["dev"]["changes"] == []  # the other stacks are still diffed
    (repo.path / "stacks" / "Pulumi.prod-eu.yaml").unlink()
    third = repo.commit("prod-eu removed")
    code, data, _ = run_diff(capsys, third, first)
    assert code == 2
    assert data["stacks"]["qa"]["whole_stack"] == "delete"
    assert {c["action"] for c in data["stacks"]["qa"]["changes"]} == {"delete"}


def test_a_stack_invalid_on_the_base_side_shows_its_problems_and_exits_1(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    config = base_config()
    config[f"{P}:endpoints"][0]["throughput"] = {"min": 0, "max": -1}
    repo.write(config)
    first = repo.commit("broken")
    repo.write(base_config())
    second = repo.commit("fixed")
    code, data, err = run_diff(capsys, first, second)
    assert code == 1
    assert any("throughput.max" in p for p in data["stacks"]["dev"]["problems"])
    assert f"{first}:stacks/Pulumi.dev.yaml" in err


@pytest.mark.parametrize("args, message", [
    (["no-such-rev"], "'no-such-rev' is not a revision"),
    (["HEAD", "no-such-rev"], "'no-such-rev' is not a revision"),
    (["--upload-pack=evil"], None),  # an option git would take: bad usage
    (["HEAD", "--price-per-dbu", "0"], "not a positive number"),
    (["HEAD", "--price-per-dbu", "-1"], "not a positive number"),
    (["HEAD", "--price-per-dbu", "nan"], "not a positive number"),
    (["HEAD", "--price-per-dbu", "abc"], "not a number"),
    ([], None),  # BASE missing
    # A folder with no stack file on either side (as from a subdirectory): nothing was read, so not "no change".
    (["HEAD", "--stacks", "elsewhere"], "no stack files (Pulumi.<stack>.yaml) in elsewhere/ at HEAD"),
    (["HEAD", "--format", "xml"], None),
])
def test_bad_input_exits_1_never_2(repo: Repo, capsys: pytest.CaptureFixture[str], args: list[str],
                                   message: str | None) -> None:
    repo.write(base_config())
    repo.commit("base")
    code = main(["diff", *args])
    err = capsys.readouterr().err
    assert code == 1
    if message:
        assert message in err
    assert "Traceback" not in err


def test_two_stack_files_and_a_price_and_the_markdown(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = repo.path / "old" / "Pulumi.dev.yaml", repo.path / "new" / "Pulumi.dev.yaml"
    old.parent.mkdir()
    new.parent.mkdir()
    old.write_text(yaml.safe_dump({"config": base_config()}))
    config = base_config()
    endpoint(config, "bt-mistral")["throughput"] = {"min": 970, "max": 2910}
    config[f"{P}:price_per_dbu"] = 0.5
    new.write_text(yaml.safe_dump({"config": config}))
    code, data, _ = run_diff(capsys, str(old), str(new))
    assert code == 2
    after = data["stacks"]["dev"]["cost"]["after"]
    assert after["endpoints"]["bt-mistral"]["max_dbu_per_hour"] == 72.0
    assert after["price_per_dbu"] == 0.5
    assert after["total"]["dollars_at_max"] == {"per_hour": None, "per_month": None}  # unknown stays unknown
    # The command line's price wins over the stack's.
    assert main(["diff", str(old), str(new), "--price-per-dbu", "2"]) == 2
    text = capsys.readouterr().out
    assert "| `Endpoint/bt-mistral` | ~ update | served_entities |" in text
    assert "| `bt-mistral *` | 24 | 24 | 24 | 72 |" in text
    assert "At 2 per DBU" in text
    assert "does not show" in text and "rotation" in text and "drift" in text
    assert "unknown (≥ 72)" in text


def test_a_budget_is_enforced_offline_and_an_unknown_rate_is_said_to_be_uncheckable(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    config = base_config()
    config[f"{P}:endpoints"] = config[f"{P}:endpoints"][:1]
    config[f"{P}:max_dbu_per_hour"] = 30
    repo.write(config)
    first = repo.commit("within")
    assert main(["validate", "stacks"]) == 0
    capsys.readouterr()
    endpoint(config, "bt-mistral")["throughput"] = {"min": 970, "max": 1940}  # 48 DBU/h at max
    repo.write(config)
    code, data, err = run_diff(capsys, first)
    assert code == 1
    assert data["stacks"]["dev"]["budget"]["status"] == "over"
    assert "48 DBU/h" in err and "max_dbu_per_hour 30" in err
    assert main(["validate", "stacks"]) == 1
    assert "max_dbu_per_hour: the endpoints at their max cost 48 DBU/h" in capsys.readouterr().err
    # An endpoint with no known rate: validate cannot check the budget, and says so.
    config = base_config()
    config[f"{P}:max_dbu_per_hour"] = 1000
    repo.write(config)
    assert main(["validate", "stacks"]) == 0
    assert "warning: cannot check max_dbu_per_hour 1000 offline" in capsys.readouterr().err


def test_the_real_catalog_rates_carry_their_sources_and_say_where_they_are_stretched() -> None:
    v3 = catalog.dbu_rate("system.ai.meta_llama_v3_1_8b_instruct", "3")
    assert v3 is not None and v3.size == 19000 and v3.dbu_per_hour == 106 and "2025" in v3.source
    assert not v3.extrapolated
    v2 = catalog.dbu_rate("system.ai.meta_llama_v3_1_8b_instruct", "2")
    assert v2 is not None and v2.size == 970 and v2.dbu_per_hour == 24 and "2024" in v2.source
    assert v2.extrapolated  # the capture does not name the model
    assert catalog.dbu_rate("system.ai.meta_llama_v3_1_8b_instruct", None) is None
    assert catalog.dbu_rate("system.ai.meta_llama_v3_1_70b_instruct", "1") is None


def test_diff_imports_neither_databricks_sdk_nor_pulumi() -> None:
    code = (
        "import sys; from components.cli import main; rc = main(['diff', 'HEAD', '--format', 'json']);"
        "bad = [m for m in sys.modules if m.startswith(('databricks', 'pulumi'))]; print(bad, file=sys.stderr);"
        "sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 2), result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_render_shows_each_endpoints_dbus_at_min_and_max(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    config = base_config()
    config[f"{P}:price_per_dbu"] = 0.25
    repo.write(config)
    assert main(["render", "stacks/Pulumi.dev.yaml", "--format", "json"]) == 0
    cost = json.loads(capsys.readouterr().out)["cost"]
    assert cost["endpoints"]["bt-mistral"] == {"billing": "hourly", "min_dbu_per_hour": 24.0,
                                               "max_dbu_per_hour": 24.0, "sources": ["test figure"]}
    assert cost["endpoints"]["bt-churn"]["min_dbu_per_hour"] == 0.0  # scales to zero
    assert cost["endpoints"]["bt-churn"]["max_dbu_per_hour"] is None
    assert cost["total"]["max_dbu_per_hour"] is None and cost["total"]["known_part"]["max_dbu_per_hour"] == 24.0
    assert cost["total"]["dollars_at_max"] == {"per_hour": None, "per_month": None}


def test_the_public_figures_priced_through_diff_and_model_units_changed_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No stand-in rate: Llama 3.1 8B version 3 at 106 DBU/h per 19000-tokens/s chunk (a recorded
    answer), version 2 at 24 per 970 (applied beyond its record, and said so); a unit model's
    rate is public nowhere, so its cost stays unknown while its units change in place."""
    monkeypatch.chdir(tmp_path)
    repo = Repo(tmp_path)
    config = base_config()
    config[f"{P}:endpoints"] = [
        {"name": "bt-8b", "foundation_model": "meta-llama-3.1-8b-instruct", "entity_version": "3",
         "throughput": {"min": 19000, "max": 19000}},
        {"name": "bt-8b-v2", "foundation_model": "meta-llama-3.1-8b-instruct", "entity_version": "2",
         "throughput": {"min": 0, "max": 1940}},
        {"name": "bt-maverick", "foundation_model": "meta-llama-4-maverick", "model_units": 50},
    ]
    repo.write(config)
    first = repo.commit("base")
    endpoint(config, "bt-8b")["throughput"] = {"min": 19000, "max": 38000}
    endpoint(config, "bt-maverick")["model_units"] = 100
    repo.write(config)
    second = repo.commit("double the throughput and the units")
    code, data, _ = run_diff(capsys, first, second)
    assert code == 2
    got = actions(data)
    assert got["Endpoint/bt-8b"] == ("update", ["served_entities"])
    assert got["Endpoint/bt-maverick"] == ("update", ["served_entities"])
    assert not [k for k, (a, _) in got.items() if a != "update"]
    assert data["stacks"]["dev"]["downtime"] == []
    before, after = data["stacks"]["dev"]["cost"]["before"], data["stacks"]["dev"]["cost"]["after"]
    assert before["endpoints"]["bt-8b"]["min_dbu_per_hour"] == before["endpoints"]["bt-8b"]["max_dbu_per_hour"] == 106
    b8 = after["endpoints"]["bt-8b"]
    assert (b8["min_dbu_per_hour"], b8["max_dbu_per_hour"]) == (106, 212)
    assert "2025" in after["endpoints"]["bt-8b"]["sources"][0]
    v2 = after["endpoints"]["bt-8b-v2"]
    assert (v2["min_dbu_per_hour"], v2["max_dbu_per_hour"]) == (0, 48)
    assert any("applied to Llama 3.1 8B version 2" in n for n in v2["notes"])
    assert after["endpoints"]["bt-maverick"]["max_dbu_per_hour"] is None
    assert after["total"]["max_dbu_per_hour"] is None
    assert after["total"]["known_part"] == {"min_dbu_per_hour": 106, "max_dbu_per_hour": 260}
    assert after["total"]["unknown"] == ["bt-maverick"]
    # With a price: money for the known part, unknown for the whole.
    code, data, _ = run_diff(capsys, first, second, "--price-per-dbu", "0.5")
    assert data["stacks"]["dev"]["cost"]["after"]["total"]["dollars_at_max"] == {"per_hour": None, "per_month": None}
    known = data["stacks"]["dev"]["cost"]["after"]["total"]["known_part"]
    assert known["dollars_at_max"] == {"per_hour": 130.0, "per_month": 94900.0}  # a lower bound: 260 DBU/h at 0.5
    assert main(["diff", first, second, "--price-per-dbu", "0.5"]) == 2
    assert "after at min: unknown (≥ 53.00/hour, ≥ 38,690/month); at max: unknown (≥ 130.00/hour, ≥ 94,900/month)" \
        in capsys.readouterr().out
    config[f"{P}:endpoints"] = config[f"{P}:endpoints"][:2]
    repo.write(config)
    code, data, _ = run_diff(capsys, second, "--price-per-dbu", "0.5")  # the work tree, maverick removed
    total = data["stacks"]["dev"]["cost"]["after"]["total"]
    assert total["max_dbu_per_hour"] == 260 and total["min_dbu_per_hour"] == 106
    assert total["dollars_at_max"] == {"per_hour": 130.0, "per_month": 94900.0}  # 730 hours a month
    assert any("bt-maverick is deleted" in d for d in data["stacks"]["dev"]["downtime"])


def test_a_change_up_would_refuse_is_flagged_and_exits_1(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    config = base_config()
    config[f"{P}:endpoints"].append({"name": "bt-units", "foundation_model": "meta-llama-4-maverick",
                                     "model_units": 50})
    repo.write(config)
    first = repo.commit("base")
    config[f"{P}:endpoints"][-1] = {"name": "bt-units", "foundation_model": "meta-llama-3.1-8b-instruct",
                                    "entity_version": "3", "throughput": {"min": 0, "max": 19000}}
    repo.write(config)
    code, data, err = run_diff(capsys, first)
    assert code == 1
    refused = data["stacks"]["dev"]["refused"]
    assert len(refused) == 1 and refused[0].startswith("Endpoint/bt-units: served_entities:")
    assert "new name" in refused[0] and "bt-units" in err


def test_lists_in_another_order_are_no_change_as_up_finds_none(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    """Rate limits, versions with their traffic and notification addresses are sets to the
    provider (a second `up` over them reordered writes nothing), so diff shows no change."""
    config = base_config()
    churn = endpoint(config, "bt-churn")
    for key in ("model", "workload_size", "scale_to_zero"):
        churn.pop(key)
    churn["models"] = [{"name": "main.ml.churn", "version": "3", "traffic": 70},
                       {"name": "main.ml.churn", "version": "4", "traffic": 30}]
    endpoint(config, "bt-mistral").update(
        rate_limits=[{"key": "endpoint", "calls": 600}, {"key": "user", "tokens": 50},
                     {"key": "user_group", "principal": "data-scientists", "calls": 9}],
        email_notifications={"on_update_success": ["a@example.com", "b@example.com"]})
    repo.write(config)
    first = repo.commit("base")

    def reorder(c: dict[str, Any]) -> None:
        endpoint(c, "bt-churn")["models"].reverse()
        mistral = endpoint(c, "bt-mistral")
        mistral["rate_limits"].reverse()
        mistral["email_notifications"]["on_update_success"].reverse()

    change(repo, reorder)
    code, data, _ = run_diff(capsys, first)
    assert (code, actions(data)) == (0, {})

    # A description added to an endpoint created without one: refused, saying to remove it.
    change(repo, lambda c: endpoint(c, "bt-churn").update(description="scores churn"))
    code, data, _ = run_diff(capsys, "HEAD~1")
    assert code == 1
    [refused] = data["stacks"]["dev"]["refused"]
    assert "remove description: the endpoint was created without it" in refused and "None" not in refused


def test_an_endpoint_that_changes_model_says_which_side_each_rate_note_is_from(
        repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = repo.path / "old" / "Pulumi.dev.yaml", repo.path / "new" / "Pulumi.dev.yaml"
    old.parent.mkdir()
    new.parent.mkdir()
    old.write_text(yaml.safe_dump({"config": base_config()}))
    config = base_config()
    config[f"{P}:endpoints"][1] = {"name": "bt-churn", "foundation_model": "mistral-7b-instruct",
                                   "entity_version": "1", "throughput": {"min": 970, "max": 970}}
    new.write_text(yaml.safe_dump({"config": config}))
    assert main(["diff", str(old), str(new)]) == 2
    text = capsys.readouterr().out
    # The head's rate under the endpoint's name; the custom model it served before, marked so.
    assert "- `bt-churn`: source: " in text
    assert "- `bt-churn` (before): main.ml.churn: no public DBU rate" in text
    assert "- `bt-churn`: main.ml.churn" not in text
