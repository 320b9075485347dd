"""The GitHub workflows a team adopts: tests run on every pull request; the deploy matrix comes
from stacks/ in the promotion order of stacks/promotion.txt; no job holds a Databricks client
secret (keyless github-oidc auth); every checkout drops its credentials; every action is pinned
to a commit of a release off the deprecated node20 runtime; permissions are per job; nothing
cancels a `pulumi up`; every make target and CLI subcommand they call exists."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from components.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ["deploy.yml", "drift.yml", "pr.yml"]
VENV_BIN = Path(sys.executable).parent
# Secrets that may be stored at all; none of them is a Databricks credential.
STORED_SECRETS = {"PULUMI_CONFIG_PASSPHRASE", "BRAINTRUST_API_KEY"}
DATABRICKS_SECRETS = ("DATABRICKS_CLIENT_SECRET", "DATABRICKS_TOKEN", "DATABRICKS_PASSWORD",
                      "ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET")
# Things that look like credentials written out: Databricks PATs, Braintrust/OpenAI keys, OAuth
# secrets (dose...), Pulumi tokens, long hex or base64 runs.
PLAINTEXT = re.compile(r"dapi[0-9a-f]{8,}|sk-[A-Za-z0-9_-]{8,}|dose[0-9a-f]{8,}|pul-[0-9a-f]{8,}|[0-9a-f]{32,}"
                       r"|[A-Za-z0-9+/]{40,}={0,2}")
# The first major release of each action that runs on node24 (node20 is deprecated), read from
# each release's action.yml. An action not listed here must be added after checking its runtime.
FIRST_NODE24_MAJOR = {"actions/checkout": 5, "actions/setup-python": 6, "pulumi/auth-actions": 2,
                      "pulumi/actions": 7, "actions/upload-artifact": 6, "actions/download-artifact": 7}
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w.-]+)@(?P<ref>\S+)(?:\s+#\s*(?P<version>\S+))?\s*$")


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in data:  # YAML 1.1 reads the key `on` as the boolean true
        data["on"] = data.pop(True)
    return data


def _all() -> dict[str, dict[str, Any]]:
    return {p.name: _load(p.name) for p in sorted(WORKFLOWS.glob("*.y*ml"))}


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(action.choices or ())


def _steps(wf: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(job_id, job, step) for job_id, job in wf["jobs"].items() for step in job.get("steps", [])]


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def _walk(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _walk(v, f"{path}[{i}]")]
    return [(path, str(value))]


def _stack_matrix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack_matrix", ROOT / "scripts" / "stack_matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pulumi_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    """Every job that runs the Pulumi CLI against a stack: it talks to Databricks."""
    return [(name, job_id, job) for name, wf in _all().items() for job_id, job in wf["jobs"].items()
            if re.search(r"\bpulumi (up|preview)\b", _runs(job))]


# ---- triggers ------------------------------------------------------------------------------------


def test_there_are_exactly_the_three_workflows() -> None:
    assert sorted(_all()) == NAMES


def test_triggers() -> None:
    assert set(_load("pr.yml")["on"]) == {"pull_request"}
    deploy = _load("deploy.yml")["on"]
    assert set(deploy) == {"push", "workflow_dispatch"} and deploy["push"]["branches"] == ["main"]
    drift = _load("drift.yml")["on"]
    assert set(drift) == {"schedule", "workflow_dispatch"} and drift["schedule"][0]["cron"]


# ---- pull requests -------------------------------------------------------------------------------


def test_the_test_suite_runs_on_every_pull_request() -> None:
    jobs = _load("pr.yml")["jobs"]
    runners = [job for job in jobs.values() if re.search(r"^make test$", _runs(job), re.MULTILINE)]
    assert runners, "no pull-request job runs `make test`"
    assert all("if" not in job and "needs" not in job for job in runners), "the tests must always run"
    recipe = (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "pytest" in recipe and "lint" in recipe.splitlines()[0]


def test_pull_request_validates_and_renders_every_stack_without_credentials() -> None:
    job = _load("pr.yml")["jobs"]["render"]
    assert "environment" not in job and "secrets." not in str(job) and "vars." not in str(job)
    assert job["permissions"] == {"contents": "read"}
    runs = _runs(job)
    assert "make validate" in runs and "stacks/Pulumi.*.yaml" in runs and "-m components render" in runs
    assert "GITHUB_STEP_SUMMARY" in runs


def test_the_change_plan_is_made_in_the_read_only_job_and_handed_on_as_an_artifact() -> None:
    jobs = _load("pr.yml")["jobs"]
    render = jobs["render"]
    assert render["permissions"] == {"contents": "read"} and "id-token" not in str(render)
    runs = _runs(render)
    # Against the merge commit's first parent (the base branch), the work tree being the merge.
    assert re.search(r"-m components diff HEAD\^1 > change-plan\.md \|\| code=\$\?", runs)
    checkout = next(s for s in render["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] >= 2
    # Every fork sees it in the summary; the diff's 2 (changes) is not a failure, its 1 is.
    assert 'cat change-plan.md >> "$GITHUB_STEP_SUMMARY"' in runs
    fail = next(s for s in render["steps"] if s.get("if") == "steps.diff.outputs.code == '1'")
    assert fail["run"].strip() == "exit 1"
    upload = next(s for s in render["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "change-plan" and upload["with"]["path"] == "change-plan.md"
    names = [s.get("name") or s.get("uses") for s in render["steps"]]
    assert names.index(upload["uses"]) < names.index("Validate every stack file")  # posted even when invalid


def test_only_the_comment_job_writes_to_the_pull_request_and_it_runs_no_pull_request_code() -> None:
    jobs = _load("pr.yml")["jobs"]
    writers = [job_id for job_id, job in jobs.items() if job["permissions"].get("pull-requests") == "write"]
    assert writers == ["comment"]
    comment = jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"}
    uses = [str(step["uses"]) for step in comment["steps"] if "uses" in step]
    assert len(uses) == 1 and uses[0].startswith("actions/download-artifact@"), "it must not check out code"
    assert comment["steps"][0]["with"]["name"] == "change-plan"
    assert "gh api" in _runs(comment) and "-m components" not in _runs(comment) and "make" not in _runs(comment)
    assert "head.repo.full_name == github.repository" in comment["if"] and "!cancelled()" in comment["if"]


def test_pull_request_previews_each_changed_stack_with_its_read_only_identity() -> None:
    jobs = _load("pr.yml")["jobs"]
    job = jobs["preview"]
    assert "changed" in job["needs"]
    assert "scripts/stack_matrix.py --changed" in _runs(jobs["changed"])
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.changed.outputs.stacks) }}"
    assert job["environment"] == "${{ matrix.stack }}-preview"
    assert re.search(r'pulumi preview --stack "\$STACK"', _runs(job))
    assert "pulumi up" not in _runs(job) and "--show-secrets" not in _runs(job)
    # Forks' pull requests get no OIDC token: the job is skipped for them.
    assert "head.repo.full_name == github.repository" in job["if"]


def test_changed_stacks_are_the_changed_stack_files_or_all_when_the_program_changes() -> None:
    sm = _stack_matrix()
    order = ["dev", "qa", "staging", "prod"]
    assert sm.changed_stacks(["stacks/Pulumi.prod.yaml", "docs/gitops.md"], order) == ["prod"]
    assert sm.changed_stacks(["stacks/Pulumi.local.yaml"], order) == []
    assert sm.changed_stacks(["README.md", ".github/workflows/pr.yml", "tests/test_x.py"], order) == []
    assert sm.changed_stacks(["components/providers/grant.py"], order) == order
    assert sm.changed_stacks(["requirements.txt", "stacks/Pulumi.dev.yaml"], order) == order


# ---- deploy --------------------------------------------------------------------------------------


def test_the_deploy_matrix_comes_from_stacks_in_promotion_order() -> None:
    jobs = _load("deploy.yml")["jobs"]
    assert set(jobs) == {"stacks", "deploy"}, "one matrix job, not one copied job per environment"
    assert "python3 scripts/stack_matrix.py" in _runs(jobs["stacks"])
    deploy = jobs["deploy"]
    assert deploy["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.order) }}"
    assert deploy["strategy"]["max-parallel"] == 1 and deploy["strategy"]["fail-fast"] is True
    assert deploy["environment"] == "${{ matrix.stack }}"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "stack_matrix.py")],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    files = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    assert sorted(yaml.safe_load(out)) == sorted(set(files) - {"local"})
    assert yaml.safe_load(out) == ["dev", "staging", "prod"]


def test_a_new_stack_file_joins_the_matrix_without_editing_anything(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for name in ("local", "dev", "staging", "prod", "qa", "prod-eu"):
        (stacks / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (stacks / "promotion.txt").write_text((ROOT / "stacks" / "promotion.txt").read_text())
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "stack_matrix.py"), "--root", str(tmp_path)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert yaml.safe_load(out) == ["dev", "qa", "staging", "prod", "prod-eu"]


def test_a_promotion_file_that_cannot_place_a_stack_says_how_to_fix_it() -> None:
    sm = _stack_matrix()
    with pytest.raises(sm.OrderError, match=r"no line places stack 'qa'; add a line `qa`"):
        sm.promotion_order(["dev", "qa"], ["dev"], [])
    assert sm.promotion_order(["b", "a", "local"], ["*"], ["local"]) == ["a", "b"]


def test_each_deploy_runs_pulumi_up_then_verifies_the_record_of_the_same_stack() -> None:
    steps = _load("deploy.yml")["jobs"]["deploy"]["steps"]
    runs = [step.get("run", "") for step in steps]
    up = next(i for i, r in enumerate(runs) if re.search(r'pulumi up --stack "\$STACK" --yes', r))
    verify = next(i for i, r in enumerate(runs) if "-m components verify" in r)
    assert verify > up
    assert 'pulumi stack output braintrust_provider --show-secrets --stack "$STACK" > "$record"' in runs[verify]
    assert '--config "$record"' in runs[verify] and "rm -f" in runs[verify]
    validate = next(i for i, r in enumerate(runs) if "make validate" in r)
    assert validate < up


# ---- drift ---------------------------------------------------------------------------------------


def test_drift_previews_every_stack_with_refresh_in_its_environment_and_files_issues() -> None:
    jobs = _load("drift.yml")["jobs"]
    assert "python3 scripts/stack_matrix.py" in _runs(jobs["stacks"])
    job = jobs["drift"]
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert job["strategy"]["fail-fast"] is False  # one drifting stack does not hide another
    assert job["environment"] == "${{ matrix.stack }}"
    runs = _runs(job)
    assert re.search(r'pulumi preview --refresh --json --stack "\$STACK"', runs)
    assert "scripts/drift_report.py" in runs and "gh issue create" in runs and "gh issue edit" in runs
    assert "pulumi up" not in runs and "--show-secrets" not in runs
    assert job["permissions"]["issues"] == "write"


# ---- keyless -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_no_job_holds_a_databricks_client_secret(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for key in DATABRICKS_SECRETS:
        assert key not in text, f"{name} mentions {key}: CI authenticates with GitHub's OIDC token"
    wf = _load(name)
    for job_id, _, step in [("", {}, {"env": wf.get("env") or {}}), *_steps(wf),
                            *[(j, job, {"env": job.get("env") or {}}) for j, job in wf["jobs"].items()]]:
        for key, value in (step.get("env") or {}).items():
            if "secrets." in str(value):
                assert key in STORED_SECRETS | {"GH_TOKEN"}, f"{name} {job_id}: {key} comes from a secret"
                assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", str(value)), f"{name}: {key}={value!r}"


def test_every_job_that_reaches_databricks_uses_github_oidc() -> None:
    jobs = _pulumi_jobs()
    assert {(name, job_id) for name, job_id, _ in jobs} == {
        ("deploy.yml", "deploy"), ("drift.yml", "drift"), ("pr.yml", "preview")}
    for name, job_id, job in jobs:
        env = job["env"]
        assert env["DATABRICKS_AUTH_TYPE"] == "github-oidc", f"{name} {job_id}"
        assert env["DATABRICKS_CLIENT_ID"] == "${{ vars.DATABRICKS_CLIENT_ID }}", f"{name} {job_id}"
        assert job["permissions"]["id-token"] == "write", f"{name} {job_id}"
        assert job["environment"].startswith("${{ matrix.stack }}"), f"{name} {job_id}"
        # Pulumi Cloud by OIDC (no stored PULUMI_ACCESS_TOKEN), when it is the backend.
        auth = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/auth-actions@")]
        assert auth and auth[0]["if"] == "vars.PULUMI_ORGANIZATION != ''", f"{name} {job_id}"
        assert "PULUMI_ACCESS_TOKEN" not in str(job)


def test_id_tokens_are_given_only_to_the_jobs_that_reach_databricks() -> None:
    reaching = {(name, job_id) for name, job_id, _ in _pulumi_jobs()}
    for name, wf in _all().items():
        for job_id, job in wf["jobs"].items():
            if job["permissions"].get("id-token") == "write":
                assert (name, job_id) in reaching, f"{name} {job_id} asks for an OIDC token it does not use"


@pytest.mark.parametrize("name", NAMES)
def test_nothing_looks_like_a_credential_written_out(name: str) -> None:
    for path, text in _walk(_load(name)):
        if path.endswith(".uses"):
            continue  # commit SHAs, checked below
        assert not PLAINTEXT.search(text), f"{name}{path} looks like a credential written out"


def test_the_plaintext_check_catches_a_written_out_token() -> None:
    assert PLAINTEXT.search("DATABRICKS_TOKEN: dapi0123456789abcdef0123")
    assert not PLAINTEXT.search("${{ secrets.BRAINTRUST_API_KEY }}")


# ---- hardening -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_checkout_has_persist_credentials_false(name: str) -> None:
    checkouts = [step for _, _, step in _steps(_load(name))
                 if str(step.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert (step.get("with") or {}).get("persist-credentials") is False, f"{name}: {step}"


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit_of_a_node24_release(name: str) -> None:
    lines = [line for line in (WORKFLOWS / name).read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert lines
    for line in lines:
        m = PINNED.match(line)
        assert m, f"{name}: cannot read {line.strip()!r}"
        assert re.fullmatch(r"[0-9a-f]{40}", m["ref"]), f"{name}: {m['action']} is not pinned to a commit SHA"
        assert m["version"] and re.fullmatch(r"v\d+\.\d+\.\d+", m["version"]), \
            f"{name}: {m['action']} needs its release as a comment, e.g. `# v1.2.3`"
        assert m["action"] in FIRST_NODE24_MAJOR, f"{name}: check {m['action']}'s runtime and list it"
        major = int(m["version"][1:].split(".")[0])
        assert major >= FIRST_NODE24_MAJOR[m["action"]], f"{name}: {m['action']} {m['version']} runs on node20"


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_granted_per_job(name: str) -> None:
    wf = _load(name)
    assert wf["permissions"] == {}, f"{name}: nothing at workflow level"
    for job_id, job in wf["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{name} {job_id} must say what it needs"
        assert set(job["permissions"].values()) <= {"read", "write"}
        assert "write-all" not in str(job["permissions"]) and "contents" not in {
            k for k, v in job["permissions"].items() if v == "write"}, f"{name} {job_id}"


@pytest.mark.parametrize("name", NAMES)
def test_concurrency_never_cancels_an_up(name: str) -> None:
    wf = _load(name)
    levels = [wf.get("concurrency")] + [job.get("concurrency") for job in wf["jobs"].values()]
    cancels = any(isinstance(c, dict) and c.get("cancel-in-progress") not in (False, None) for c in levels)
    if "pulumi up" in (WORKFLOWS / name).read_text():
        assert wf["concurrency"]["cancel-in-progress"] is False and not cancels
    for job in wf["jobs"].values():
        assert "continue-on-error" not in job


def test_the_workflow_linters_find_nothing() -> None:
    """What `make lint` runs: actionlint (with shellcheck on every `run:`) and zizmor, 0 findings."""
    actionlint, zizmor, shellcheck = (VENV_BIN / "actionlint", VENV_BIN / "zizmor", VENV_BIN / "shellcheck")
    if not actionlint.exists() or not zizmor.exists():
        pytest.fail("actionlint and zizmor come from requirements-dev.txt: run `make venv`")
    # The files named: actionlint then needs no git checkout around them.
    args = [str(actionlint)] + ([f"-shellcheck={shellcheck}"] if shellcheck.exists() else []) + [
        str(p.relative_to(ROOT)) for p in sorted(WORKFLOWS.glob("*.yml"))]
    lint = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    audit = subprocess.run([str(zizmor), "--offline", "--quiet", ".github"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_make_lint_runs_both_workflow_linters() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "actionlint" in recipe and "zizmor" in recipe


# ---- what the workflows call exists --------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_make_call_names_an_existing_target(name: str) -> None:
    targets, seen = _make_targets(), 0
    for _, _, step in _steps(_load(name)):
        for target in re.findall(r"\bmake\s+(?:-\S+\s+)*([A-Za-z][\w.-]*)", step.get("run", "")):
            seen += 1
            assert target in targets, f"{name}: `make {target}` is not a Makefile target"
    assert seen


@pytest.mark.parametrize("name", ["pr.yml", "deploy.yml"])
def test_every_cli_call_names_an_existing_subcommand(name: str) -> None:
    subcommands, seen = _subcommands(), 0
    for _, _, step in _steps(_load(name)):
        for command in re.findall(r"python\S*\s+-m\s+components\s+(\S+)", step.get("run", "")):
            seen += 1
            assert command in subcommands, f"{name}: `python -m components {command}` does not exist"
    assert seen


@pytest.mark.parametrize("name", NAMES)
def test_every_script_a_workflow_runs_exists(name: str) -> None:
    for _, _, step in _steps(_load(name)):
        for script in re.findall(r"\b(scripts/[\w.-]+)", step.get("run", "")):
            assert (ROOT / script).is_file(), f"{name}: {script} does not exist"


def test_the_checks_find_a_missing_target_and_subcommand() -> None:
    assert "bench-nonexistent" not in _make_targets() and "up" in _make_targets()
    assert "deploy" not in _subcommands() and {"validate", "render", "verify", "diff"} <= _subcommands()


# ---- the drift issue step, run as written with a stand-in for the `gh` CLI ----------------------

FAKE_GH = r'''#!/usr/bin/env python3
"""Stand-in for `gh`: open issues in $GH_STATE (JSON), every call appended to $GH_CALLS."""
import json, os, sys
args = sys.argv[1:]
state_path, calls_path = os.environ["GH_STATE"], os.environ["GH_CALLS"]
state = json.load(open(state_path))
call = {"args": args}
if "--body-file" in args:
    call["body"] = open(args[args.index("--body-file") + 1]).read()
with open(calls_path, "a") as f:
    f.write(json.dumps(call) + "\n")
if args[:2] == ["issue", "list"]:
    assert "--jq" in args and args[args.index("--label") + 1] == "drift"
    if state.get("list_fails"):
        sys.exit("HTTP 502: Bad Gateway")
    for issue in state["open"]:
        print(f"{issue['number']}\t{issue['title']}")
'''


def _drift_issue_step() -> dict[str, Any]:
    steps = _load("drift.yml")["jobs"]["drift"]["steps"]
    return next(s for s in steps if "gh issue" in s.get("run", ""))


def _run_issue_step(tmp_path: Path, stack: str, drifting: bool, open_issues: list[dict[str, Any]],
                    list_fails: bool = False) -> list[dict[str, Any]]:
    bin_dir, runner_temp = tmp_path / "bin", tmp_path / "runner"
    bin_dir.mkdir()
    runner_temp.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "state.json").write_text(json.dumps({"open": open_issues, "list_fails": list_fails}))
    (runner_temp / "report.md").write_text(f"## Stack `{stack}`: drift\n\n- `update` Endpoint `e` (tags)\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STACK": stack, "RUNNER_TEMP": str(runner_temp),
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/databricks-braintrust",
           "GITHUB_RUN_ID": "42", "GH_TOKEN": "unused", "DRIFTING": "true" if drifting else "false",
           "GH_STATE": str(tmp_path / "state.json"), "GH_CALLS": str(tmp_path / "calls.jsonl")}
    # As GitHub runs a `run:` step: bash with -e and pipefail.
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _drift_issue_step()["run"]],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == (1 if list_fails else 0), proc.stderr
    calls = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def _verbs(calls: list[dict[str, Any]]) -> list[str]:
    return [" ".join(c["args"][:2]) for c in calls]


def test_drift_opens_one_issue_for_the_stack(tmp_path: Path) -> None:
    others = [{"number": 7, "title": "Drift in stack prod-eu"}]
    calls = _run_issue_step(tmp_path, "prod", True, others)
    assert _verbs(calls) == ["issue list", "label create", "issue create"]
    create = calls[-1]
    assert create["args"][create["args"].index("--title") + 1] == "Drift in stack prod"
    assert create["args"][create["args"].index("--label") + 1] == "drift"
    assert "`update` Endpoint `e` (tags)" in create["body"]
    assert "https://github.com/acme/databricks-braintrust/actions/runs/42" in create["body"]


def test_drift_updates_the_open_issue_instead_of_opening_another(tmp_path: Path) -> None:
    calls = _run_issue_step(tmp_path, "prod", True, [{"number": 7, "title": "Drift in stack prod-eu"},
                                                      {"number": 9, "title": "Drift in stack prod"}])
    assert _verbs(calls) == ["issue list", "label create", "issue edit", "issue comment"]
    assert calls[2]["args"][2] == "9" and calls[3]["args"][2] == "9"
    assert "`update` Endpoint `e`" in calls[2]["body"]


def test_no_drift_closes_the_open_issue_and_otherwise_does_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    calls = _run_issue_step(tmp_path / "a", "dev", False, [{"number": 3, "title": "Drift in stack dev"}])
    assert _verbs(calls) == ["issue list", "issue close"] and calls[1]["args"][2] == "3"
    assert _verbs(_run_issue_step(tmp_path / "b", "dev", False, [])) == ["issue list"]


def test_a_failed_issue_listing_fails_the_step_instead_of_opening_a_duplicate(tmp_path: Path) -> None:
    calls = _run_issue_step(tmp_path, "prod", True, [{"number": 9, "title": "Drift in stack prod"}],
                            list_fails=True)
    assert _verbs(calls) == ["issue list"]


# ---- the deploy's verify step, run as written with stand-ins for pulumi and the venv's python ---

FAKE_PULUMI = r'''#!/bin/sh
# Stand-in for `pulumi stack output braintrust_provider --show-secrets --stack <s>`.
echo "$*" >> "$CALLS"
printf '{"client_secret": "%s"}\n' "$RECORD_SECRET"
'''
FAKE_PYTHON = r'''#!/usr/bin/env python3
# Stand-in for `.venv/bin/python -m components verify --config FILE`: what it was given.
import json, os, stat, sys
path = sys.argv[sys.argv.index("--config") + 1]
mode = stat.S_IMODE(os.stat(path).st_mode)
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "mode": mode, "record": json.load(open(path))}) + "\n")
'''


def test_verify_reads_the_stack_record_from_a_private_file_that_is_removed_after(tmp_path: Path) -> None:
    step = next(s for s in _load("deploy.yml")["jobs"]["deploy"]["steps"] if "components verify" in s.get("run", ""))
    work, bin_dir, runner_temp = tmp_path / "work", tmp_path / "bin", tmp_path / "runner"
    for d in (work / ".venv" / "bin", bin_dir, runner_temp):
        d.mkdir(parents=True)
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (work / ".venv" / "bin" / "python").write_text(FAKE_PYTHON)
    for script in (bin_dir / "pulumi", work / ".venv" / "bin" / "python"):
        script.chmod(0o755)
    secret = "dose-test-0123456789abcdef"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STACK": "staging", "RUNNER_TEMP": str(runner_temp),
           "CALLS": str(tmp_path / "calls"), "RECORD_SECRET": secret}
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pulumi_call, verify_call = (tmp_path / "calls").read_text().splitlines()
    assert pulumi_call == "stack output braintrust_provider --show-secrets --stack staging"
    verify = json.loads(verify_call)
    assert verify["argv"][:3] == ["-m", "components", "verify"] and verify["record"]["client_secret"] == secret
    assert verify["mode"] == 0o600  # umask 077: only the job's user can read the record
    assert list(runner_temp.iterdir()) == []  # removed on exit
    assert secret not in proc.stdout + proc.stderr


# ---- the pull request's `changed` step, run as written in a scratch git repository ----------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(repo),
                                           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                                           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}).stdout


@pytest.mark.parametrize(("changed", "expected"), [
    (["stacks/Pulumi.staging.yaml"], ["staging"]),
    (["stacks/Pulumi.local.yaml", "docs/gitops.md"], []),
    (["components/spec.py"], ["dev", "staging", "prod"]),
])
def test_the_changed_step_lists_the_stacks_a_pull_request_affects(tmp_path: Path, changed: list[str],
                                                                 expected: list[str]) -> None:
    repo = tmp_path / "repo"
    for rel in ("scripts/stack_matrix.py", "stacks/promotion.txt",
                *[str(p.relative_to(ROOT)) for p in (ROOT / "stacks").glob("Pulumi.*.yaml")]):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text((ROOT / rel).read_text())
    for rel in ("components/spec.py", "docs/gitops.md"):  # a program file, a document
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("base\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    for rel in changed:
        (repo / rel).write_text((repo / rel).read_text() + "\n# changed\n")
    _git(repo, "commit", "-qam", "change")
    step = next(s for s in _load("pr.yml")["jobs"]["changed"]["steps"] if s.get("id") == "diff")
    output = tmp_path / "github_output"
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=repo,
                          env={"PATH": "/usr/bin:/bin", "BASE": base, "GITHUB_OUTPUT": str(output)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert output.read_text() == f"stacks={json.dumps(expected)}\n"


# ---- the pull request's comment step, run as written with a stand-in for the `gh` CLI ------------

FAKE_GH_API = r"""#!/usr/bin/env python3
# Stand-in for `gh api`: the pull request's comments in $GH_STATE (JSON), calls in $GH_CALLS.
import json, os, subprocess, sys
args = sys.argv[1:]
state_path = os.environ["GH_STATE"]
state = json.load(open(state_path))
with open(os.environ["GH_CALLS"], "a") as f:
    f.write(json.dumps(args) + "\n")
assert args[0] == "api"
method = args[args.index("--method") + 1] if "--method" in args else "GET"
if method == "GET":
    if state.get("list_fails"):
        sys.exit("HTTP 502: Bad Gateway")
    jq = args[args.index("--jq") + 1]
    out = subprocess.run(["jq", "-r", jq], input=json.dumps(state["comments"]), capture_output=True, text=True)
    print(out.stdout, end="")
    sys.exit(out.returncode)
body = open(args[args.index("-F") + 1].split("=@", 1)[1]).read()
if method == "PATCH":
    cid = int(args[3].rsplit("/", 1)[1])
    next(c for c in state["comments"] if c["id"] == cid)["body"] = body
else:
    state["comments"].append({"id": 100 + len(state["comments"]), "user": {"login": "github-actions[bot]"},
                              "body": body})
json.dump(state, open(state_path, "w"))
"""


def _run_comment_step(tmp_path: Path, plan: str, list_fails: bool = False) -> tuple[int, list[dict[str, Any]]]:
    step = next(s for s in _load("pr.yml")["jobs"]["comment"]["steps"] if "run" in s)
    bin_dir, runner_temp, work = tmp_path / "bin", tmp_path / "runner", tmp_path / "work"
    for d in (bin_dir, runner_temp, work):
        d.mkdir(parents=True, exist_ok=True)
    (bin_dir / "gh").write_text(FAKE_GH_API)
    (bin_dir / "gh").chmod(0o755)
    state = tmp_path / "state.json"
    if not state.exists():
        state.write_text(json.dumps({"comments": [
            {"id": 1, "user": {"login": "alice"}, "body": "<!-- databricks-braintrust change plan -->\nmine"},
            {"id": 2, "user": {"login": "github-actions[bot]"}, "body": "something else"}]}))
    data = json.loads(state.read_text())
    data["list_fails"] = list_fails
    state.write_text(json.dumps(data))
    (work / "change-plan.md").write_text(plan)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUNNER_TEMP": str(runner_temp), "PR": "7", "GH_TOKEN": "unused",
           "GITHUB_REPOSITORY": "acme/databricks-braintrust", "RUN_URL": "https://github.com/acme/x/actions/runs/42",
           "GH_STATE": str(state), "GH_CALLS": str(tmp_path / "calls.jsonl")}
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, json.loads(state.read_text())["comments"]


def test_the_change_plan_is_one_comment_updated_on_each_push(tmp_path: Path) -> None:
    code, comments = _run_comment_step(tmp_path, "## Change plan\nfirst push\n")
    assert code == 0
    ours = [c for c in comments if c["user"]["login"] == "github-actions[bot]" and "Change plan" in c["body"]]
    assert len(ours) == 1 and "first push" in ours[0]["body"]
    assert comments[0]["body"].endswith("mine")  # someone's comment with the marker is not ours
    code, comments = _run_comment_step(tmp_path, "## Change plan\nsecond push\n")
    ours = [c for c in comments if "Change plan" in c["body"]]
    assert code == 0 and len(ours) == 1 and "second push" in ours[0]["body"] and "first push" not in ours[0]["body"]
    # A listing that fails fails the step and posts nothing.
    code, after = _run_comment_step(tmp_path, "## Change plan\nthird push\n", list_fails=True)
    assert code != 0 and after == comments
    # A plan too long for one comment is cut, pointing at the run's summary.
    code, comments = _run_comment_step(tmp_path, "x" * 70000)
    body = next(c["body"] for c in comments if c["id"] >= 100)
    assert code == 0 and len(body) < 65536 and "Cut short" in body and "actions/runs/42" in body
