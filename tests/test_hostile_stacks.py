"""Careless and hostile stack files, one table per class of input: each is refused at its field
with a fix and nothing secret echoed, or accepted where a careful user would expect it."""

from __future__ import annotations

import copy
import datetime
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.spec import PROJECT, Stack, StackError, check_across, load_stack_file, validate_document
from components.spec.endpoints import CustomModelEndpoint
from tests.cli import run_cli

# A PAT-shaped fixture built at run time, so no file in the repository holds a real-looking token.
FAKE_PAT = "dapi" + "0123456789abcdef" * 2

ROOT = Path(__file__).resolve().parent.parent
DEV_TEXT = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
DEV = yaml.safe_load(DEV_TEXT)
PROD = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())

Mutation = Callable[[dict[str, Any]], None]


def config_key(key: str, **fields: Any) -> Mutation:
    def mutate(c: dict[str, Any]) -> None:
        c[f"{PROJECT}:{key}"].update(fields)
    return mutate


def endpoint(index: int, **fields: Any) -> Mutation:
    def mutate(c: dict[str, Any]) -> None:
        c[f"{PROJECT}:endpoints"][index].update(fields)
    return mutate


def nested(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(c: dict[str, Any]) -> None:
        node: Any = c
        for part in path[:-1]:
            node = node[f"{PROJECT}:{part}" if isinstance(part, str) and node is c else part]
        node[path[-1]] = value
    return mutate


def validate(mutate: Mutation | None = None, *, base: dict[str, Any] = DEV, stack: str = "dev") -> Stack:
    document = copy.deepcopy(base)
    if mutate:
        mutate(document["config"])
    return validate_document(document, stack=stack, file=f"Pulumi.{stack}.yaml")


def refusal(mutate: Mutation, *, base: dict[str, Any] = DEV, stack: str = "dev") -> list[str]:
    with pytest.raises(StackError) as info:
        validate(mutate, base=base, stack=stack)
    lines = [str(p) for p in info.value.problems]
    for line in lines:
        assert line.startswith(f"Pulumi.{stack}.yaml: "), line
        assert line.rstrip().endswith(")"), f"no fix given: {line}"
    return lines


def load_text(tmp_path: Path, text: str, name: str = "Pulumi.dev.yaml") -> Stack:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_stack_file(path, display=name)


def refused_text(tmp_path: Path, text: str, name: str = "Pulumi.dev.yaml") -> list[str]:
    with pytest.raises(StackError) as info:
        load_text(tmp_path, text, name)
    lines = [str(p) for p in info.value.problems]
    for line in lines:
        assert line.startswith(f"{name}: "), line
        assert line.rstrip().endswith(")"), f"no fix given: {line}"
    return lines


# ---------------------------------------------------------------------------------------------
# YAML read defensively

def test_a_stack_file_over_one_mebibyte_is_refused_with_a_message(tmp_path: Path) -> None:
    lines = refused_text(tmp_path, DEV_TEXT + "#" + "x" * (1 << 20) + "\n")
    assert any("larger than 1024 KiB" in line for line in lines)


def test_a_file_just_under_the_cap_is_read(tmp_path: Path) -> None:
    padding = "#" + "x" * ((1 << 20) - len(DEV_TEXT.encode()) - 10) + "\n"
    assert load_text(tmp_path, DEV_TEXT + padding).name == "dev"


def alias_bomb(levels: int, width: int = 10) -> str:
    lines = ["bomb0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"bomb{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [
    alias_bomb(9) + DEV_TEXT,  # a billion values from under 1 KiB
    DEV_TEXT.replace("  databricks-braintrust:tags:", alias_bomb(12).replace("bomb", "  x-bomb") +
                     "  databricks-braintrust:tags:"),
    DEV_TEXT.replace("    team: ml-platform", "    team: &t [*t]"),  # an alias inside itself
], ids=["top-level", "inside-config", "self-reference"])
def test_alias_expansion_is_bounded_and_refused_promptly(tmp_path: Path, text: str) -> None:
    # In a child process with a generous bound, so a regression fails instead of hanging the suite.
    code = ("import sys; from pathlib import Path; from components.spec import load_stack_file, StackError\n"
            "try:\n    load_stack_file(Path(sys.argv[1]))\nexcept StackError as e:\n    print(e)\n")
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "expands to more than" in result.stdout or "refers to a value that contains it" in result.stdout


@pytest.mark.parametrize("text", [
    "config:\n  databricks-braintrust:tags: [" + ",".join(["1"] * 60_000) + "]\n",
    "config:\n  databricks-braintrust:tags:\n" + "".join(f"    k{i}: v\n" for i in range(60_000)),
], ids=["flow-list", "block-map"])
def test_a_file_of_more_values_than_any_stack_is_refused_before_parsing(tmp_path: Path, text: str) -> None:
    assert any("more than 50000" in line for line in refused_text(tmp_path, text))


def test_aliases_and_merge_keys_within_bounds_are_accepted(tmp_path: Path) -> None:
    text = DEV_TEXT.replace("      throughput: {min: 0, max: 1240}\n",
                            "      throughput: &tp {min: 0, max: 1240}\n", 1).replace(
        "      throughput: {min: 0, max: 970}\n", "      throughput: {<<: *tp, max: 1940}\n", 1)
    stack = load_text(tmp_path, text)
    throughput = stack.spec.endpoints[1].throughput  # type: ignore[union-attr]
    assert (throughput.min, throughput.max) == (0, 1940)


@pytest.mark.parametrize(("old", "new", "key", "lines", "field"), [
    ("    host: https://acme-dev.cloud.databricks.com\n",
     "    host: https://acme-dev.cloud.databricks.com\n    host: https://evil.cloud.databricks.com\n",
     "host", (4, 5), "workspace.host"),
    ("      throughput: {min: 0, max: 1240}\n", "      throughput: {min: 0, max: 1240, max: 2480}\n",
     "max", (8, 8), "endpoints[bt-dev-llama-3-1-8b].throughput.max"),
    ("    environment: dev\n", "    environment: dev\n    team: search\n", "team", (28, 31), "tags.team"),
    ("  databricks-braintrust:principal:\n",
     "  databricks-braintrust:braintrust: {secret_name: other}\n  databricks-braintrust:principal:\n",
     "databricks-braintrust:braintrust", (19, 24), "braintrust"),
], ids=["workspace-host", "flow-map", "tags", "top-level-config-key"])
def test_a_key_written_twice_at_any_depth_is_refused_naming_the_key_and_both_lines(
        tmp_path: Path, old: str, new: str, key: str, lines: tuple[int, int], field: str) -> None:
    assert old in DEV_TEXT
    found = refused_text(tmp_path, DEV_TEXT.replace(old, new, 1))
    assert any(f"{field}: " in line and repr(key) in line and f"lines {lines[0]} and {lines[1]}" in line
               for line in found), found


@pytest.mark.parametrize(("first", "second"), [("1", "01"), ("true", "True"), ('"k"', "k")])
def test_keys_that_yaml_reads_as_one_count_as_written_twice(tmp_path: Path, first: str, second: str) -> None:
    text = DEV_TEXT.replace("    environment: dev\n", f"    environment: dev\n    {first}: a\n    {second}: b\n")
    assert any("tags." in line and "written twice" in line for line in refused_text(tmp_path, text))


def test_the_merge_key_written_twice_is_refused(tmp_path: Path) -> None:
    text = DEV_TEXT.replace("      throughput: {min: 0, max: 970}\n",
                            "      throughput: {<<: {min: 0}, <<: {max: 970}}\n", 1)
    assert any("throughput" in line and "'<<' is written twice" in line for line in refused_text(tmp_path, text))


def test_the_same_key_qualified_and_unqualified_is_refused() -> None:
    def mutate(c: dict[str, Any]) -> None:
        c["principal"] = copy.deepcopy(c[f"{PROJECT}:principal"])
    assert any("written twice" in line for line in refusal(mutate))


@pytest.mark.parametrize(("old", "new", "field", "written"), [
    ("version: \"3\"", "version: 010", "model.version", "010"),
    ("version: \"3\"", "version: 0o17", "model.version", "0o17"),
    ("secret_lifetime_days: 90", "secret_lifetime_days: 1:30", "principal.secret_lifetime_days", "1:30"),
    ("secret_name: databricks-dev", "secret_name: no", "braintrust.secret_name", "no"),
    ("display_name: braintrust-dev", "display_name: On", "principal.display_name", "On"),
    ("environment: dev", "environment: yes", "tags.environment", "yes"),
    ("cost-center: \"1234\"", "cost-center: 01234", "tags.cost-center", "01234"),
    ("cost-center: \"1234\"", "cost-center: 09", "tags.cost-center", "09"),
    ("secret_name: databricks-dev", "secret_name: 1e3", "braintrust.secret_name", "1e3"),
], ids=["octal-version", "0o-version", "sexagesimal", "no-as-text", "on-as-text", "yes-in-tag",
        "octal-tag", "yaml-1.2-integer", "yaml-1.2-float"])
def test_yaml_1_1_traps_are_refused_with_quote_it(tmp_path: Path, old: str, new: str, field: str,
                                                   written: str) -> None:
    assert old in DEV_TEXT
    found = refused_text(tmp_path, DEV_TEXT.replace(old, new, 1))
    assert any(field in line and "quote it" in line and f'"{written}"' in line for line in found), found


@pytest.mark.parametrize(("old", "new", "check"), [
    ("publish: false", "publish: no", lambda s: s.spec.braintrust.publish is False),
    ("scale_to_zero: true", "scale_to_zero: yes", lambda s: s.spec.endpoints[2].scale_to_zero is True),
    ("version: \"3\"", "version: 3", lambda s: s.spec.endpoints[2].model.version == "3"),
    ("version: \"3\"", "version: \"010\"", lambda s: s.spec.endpoints[2].model.version == "010"),
    ("cost-center: \"1234\"", "cost-center: \"0123\"", lambda s: s.spec.tags["cost-center"] == "0123"),
    ("max: 1240}", "max: 1_240}", lambda s: s.spec.endpoints[0].throughput.max == 1240),
], ids=["no-for-boolean", "yes-for-boolean", "plain-version", "quoted-version", "quoted-tag", "grouped-digits"])
def test_what_yaml_reads_as_written_is_accepted(tmp_path: Path, old: str, new: str,
                                                check: Callable[[Stack], bool]) -> None:
    assert old in DEV_TEXT
    assert check(load_text(tmp_path, DEV_TEXT.replace(old, new, 1)))


def test_a_version_keeps_its_text_as_written(tmp_path: Path) -> None:
    found = refused_text(tmp_path, DEV_TEXT.replace('version: "3"', "version: 3.10", 1))
    assert any("model.version" in line and "'3.10'" in line for line in found), found


@pytest.mark.parametrize(("old", "new", "field", "tag"), [
    ('version: "3"', 'version: !!int "010"', "model.version", "!!int"),  # would be version 8
    ("secret_lifetime_days: 90", "secret_lifetime_days: !!float 90", "principal.secret_lifetime_days", "!!float"),
    ("display_name: braintrust-dev", "display_name: !!binary YnJhaW50cnVzdC1kZXY=", "principal.display_name",
     "!!binary"),  # hides the text from a reviewer
    ("display_name: braintrust-dev", "display_name: !!python/object:os.system {}", "principal.display_name",
     "!!python/object:os.system"),
    ("display_name: braintrust-dev", "display_name: !secret braintrust-dev", "principal.display_name", "!secret"),
    ("  databricks-braintrust:tags:\n", "  databricks-braintrust:tags: !!set\n", "tags", "!!set"),
    ("publish: false", 'publish: !!bool "false"', "braintrust.publish", "!!bool"),
], ids=["int-on-quoted-version", "float", "binary", "python-object", "local-tag", "set", "bool-on-quoted"])
def test_an_explicit_yaml_tag_is_refused_at_its_field(tmp_path: Path, old: str, new: str, field: str,
                                                      tag: str) -> None:
    assert old in DEV_TEXT
    found = refused_text(tmp_path, DEV_TEXT.replace(old, new, 1))
    assert any(field in line and f"YAML tag {tag}," in line for line in found), found


def test_a_tag_with_a_password_in_it_is_refused_unseen(tmp_path: Path) -> None:
    text = DEV_TEXT.replace("display_name: braintrust-dev", "display_name: !<https://u:hunter2@x.example> a")
    found = refused_text(tmp_path, text)
    assert found and "hunter2" not in "\n".join(found)


@pytest.mark.parametrize(("new", "version"), [('!!str 010', "010"), ('!!str "3"', "3")])
def test_an_explicit_text_tag_keeps_the_text(tmp_path: Path, new: str, version: str) -> None:
    stack = load_text(tmp_path, DEV_TEXT.replace('version: "3"', f"version: {new}", 1))
    endpoint = stack.spec.endpoints[2]
    assert isinstance(endpoint, CustomModelEndpoint) and endpoint.model.version == version


# ---------------------------------------------------------------------------------------------
# Names and free text

# C0, C1, overrides and zero-width, and every other invisible kind: a left-to-right mark, a soft
# hyphen, an Arabic letter mark, a paragraph separator, an invisible "tag" letter.
CONTROL = ["\n", "\x00", "\t", "\r", "\x1b", "\x7f", "\x85", "\u202e", "\u200b",
           "\u200e", "\u00ad", "\u061c", "\u2029", "\U000e0041"]
NAME_FIELDS: list[tuple[str, Callable[[str], Mutation], str]] = [
    ("endpoint name", lambda v: endpoint(0, name=f"bt-x{v}"), "endpoints[0].name"),
    ("display_name", lambda v: config_key("principal", display_name=f"braintrust{v}dev"),
     "principal.display_name"),
    ("secret_name", lambda v: config_key("braintrust", secret_name=f"databricks-dev{v}"),
     "braintrust.secret_name"),
    ("org_name", lambda v: config_key("braintrust", org_name=f"acme{v}"), "braintrust.org_name"),
    ("tag key", lambda v: nested(("tags", f"team{v}"), "x"), "tags.team"),
    ("tag value", lambda v: nested(("tags", "team"), f"ml{v}"), "tags.team"),
    ("endpoint tag", lambda v: endpoint(0, tags={"team": f"ml{v}"}),
     "endpoints[bt-dev-llama-3-1-8b].tags.team"),
    ("model name", lambda v: nested(("endpoints", 2, "model", "name"), f"main.ml.churn{v}"),
     "endpoints[bt-dev-churn-scorer].model.name"),
    ("model version", lambda v: nested(("endpoints", 2, "model", "version"), f"3{v}"),
     "endpoints[bt-dev-churn-scorer].model.version"),
    ("host", lambda v: config_key("workspace", host=f"https://acme{v}.cloud.databricks.com"), "workspace.host"),
    ("scope", lambda v: config_key("principal", scopes=[f"all-apis{v}"]), "principal.scopes[0]"),
]


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
@pytest.mark.parametrize(("what", "mutation", "field"), NAME_FIELDS, ids=[f[0] for f in NAME_FIELDS])
def test_control_characters_are_refused_in_every_name_like_field(
        what: str, mutation: Callable[[str], Mutation], field: str, char: str) -> None:
    found = refusal(mutation(char))
    assert any(line.startswith(f"Pulumi.dev.yaml: {field}") for line in found), found


@pytest.mark.parametrize("char", ["\n", "\r\n"])
def test_a_trailing_newline_does_not_slip_through_a_pattern(char: str) -> None:
    found = refusal(endpoint(0, name="bt-dev-llama-3-1-8b" + char))
    assert any("endpoints[0].name" in line and "U+000" in line for line in found), found


@pytest.mark.parametrize("value", ["3\n", "٣", "³"])
def test_versions_are_ascii_digits_only(value: str) -> None:
    assert refusal(nested(("endpoints", 2, "model", "version"), value))


@pytest.mark.parametrize(("mutation", "field"), [
    (config_key("braintrust", secret_name="databricks-dev "), "braintrust.secret_name"),
    (config_key("braintrust", org_name=" acme"), "braintrust.org_name"),
    (config_key("principal", display_name="braintrust-dev "), "principal.display_name"),
    (config_key("braintrust", org_name=""), "braintrust.org_name"),
])
def test_names_with_stray_spaces_or_empty_are_refused(mutation: Mutation, field: str) -> None:
    assert any(line.startswith(f"Pulumi.dev.yaml: {field}: ") for line in refusal(mutation))


def test_a_pasted_blob_is_quoted_short() -> None:
    found = refusal(endpoint(0, name="x y" * 10_000))
    assert all(len(line) < 400 for line in found), [len(line) for line in found]


@pytest.mark.parametrize("value", ["eyJ" * 300_000, "dapi" * 200_000, "sk-" * 300_000, "a" * 900_000,
                                   "//a" * 300_000, "-----BEGIN " * 80_000],
                         ids=["jwt-prefix", "pat-prefix", "key-prefix", "letters", "slashes", "pem"])
def test_a_long_value_is_scanned_for_credentials_in_linear_time(tmp_path: Path, value: str) -> None:
    # The scans were quadratic: a 60 KB value took seconds, a 1 MiB one hours. In a child process
    # with a generous bound, so a regression fails instead of hanging the suite.
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV_TEXT.replace("    environment: dev\n", f"    environment: '{value}'\n"))
    result = subprocess.run([sys.executable, "-m", "components", "validate", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "tags.environment: " in result.stderr


@pytest.mark.parametrize(("key", "hidden"), [
    ('"team\\nok  stacks/Pulumi.prod.yaml"', "\nok  stacks/"),  # a forged "ok" line
    ('"te\\u2029am"', "\u2029"),
    ('"a\\u202eb"', "\u202e"),
])
def test_a_key_is_shown_escaped_so_it_cannot_forge_an_output_line(tmp_path: Path, key: str, hidden: str) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV_TEXT.replace("    environment: dev\n", f"    environment: dev\n    {key}: x\n"))
    result = run_cli("validate", str(path))
    assert result.returncode == 1 and hidden not in result.stdout + result.stderr
    assert all(line.startswith(str(path)) or line.endswith("invalid") for line in result.stderr.splitlines())


def test_a_key_written_twice_with_a_password_in_it_is_refused_unseen(tmp_path: Path) -> None:
    text = DEV_TEXT.replace("    environment: dev\n",
                            "    environment: dev\n    https://u:hunter2@x: a\n    https://u:hunter2@x: b\n")
    found = refused_text(tmp_path, text)
    assert any("written twice" in line for line in found) and "hunter2" not in "\n".join(found)


@pytest.mark.parametrize("stack", ["dev eu", "dev\nok", "prod\u202e", "dév"])
def test_a_file_naming_a_stack_pulumi_refuses_is_refused(tmp_path: Path, stack: str) -> None:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(DEV_TEXT)
    with pytest.raises(StackError) as info:
        load_stack_file(path, display=path.name)
    found = [str(p) for p in info.value.problems]
    assert any("which Pulumi refuses" in line and line.endswith(")") for line in found), found
    assert all("\n" not in line and "\u202e" not in line for line in found)  # shown escaped


def test_printable_unicode_in_free_text_is_accepted() -> None:
    stack = validate(lambda c: c[f"{PROJECT}:tags"].update({"owner": "Zoë Müller"}))
    assert stack.spec.tags["owner"] == "Zoë Müller"


# ---------------------------------------------------------------------------------------------
# Hosts and URLs

@pytest.mark.parametrize(("host", "words"), [
    ("https://acme..cloud.databricks.com", "empty label"),
    ("https://acme.cloud.databricks.com.", "empty label"),
    ("https://.cloud.databricks.com", "empty label"),
    ("https://\u0430cme.cloud.databricks.com", "non-ASCII"),  # Cyrillic a
    ("https://acme.cloud.databricks.com\uff0e", "non-ASCII"),
    ("https://-acme.cloud.databricks.com", "not a valid DNS name"),
    ("https://acme_x.cloud.databricks.com", "not a valid DNS name"),
    ("https://" + "a" * 64 + ".cloud.databricks.com", "not a valid DNS name"),
    ("https://acme.cloud.databricks.com:443", "port"),
    ("https://acme.cloud.databricks.com:8443", "port"),
    ("https://acme.cloud.databricks.com.evil.example", "not a Databricks workspace"),
    ("https://databricks.com", "not a Databricks workspace"),
    ("http://acme.cloud.databricks.com", "https://"),
    ("https://10.0.0.5", "not a Databricks workspace"),
    ("http://127.0.0.1.nip.io:8787", "https://"),
    ("https://acme.cloud.databricks.com:", "empty or zero port"),  # was kept, colon and all
    ("https://acme.cloud.databricks.com:/", "empty or zero port"),
    ("http://127.0.0.1:0", "empty or zero port"),
    ("https://acme\u00a0x.cloud.databricks.com", "contains a space"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_workspace_hosts_that_are_not_valid_databricks_names_are_refused(host: str, words: str) -> None:
    found = refusal(config_key("workspace", host=host))
    assert any(line.startswith("Pulumi.dev.yaml: workspace.host: ") and words in line for line in found), found


@pytest.mark.parametrize("host", [
    "https://xn--acm-dma.cloud.databricks.com",
    "https://ACME-Dev.cloud.databricks.com",
    "http://127.0.0.1:8787",
    "http://[::1]:8787",
    "https://localhost:8443",
    "https://adb-1234567890123456.7.azuredatabricks.net",
])
def test_punycode_mixed_case_and_loopback_ports_are_accepted(host: str) -> None:
    assert validate(config_key("workspace", host=host)).spec.workspace.host == host


SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize(("mutation", "field"), [
    (config_key("workspace", host=f"https://admin:{SECRET}@acme.cloud.databricks.com"), "workspace.host"),
    (config_key("workspace", host=f"https://{SECRET}@acme.cloud.databricks.com"), "workspace.host"),
    (config_key("workspace", host=f"ftp://u:{SECRET}@acme.cloud.databricks.com"), "workspace.host"),
    (config_key("braintrust", api_url=f"https://bt:{SECRET}@api.braintrust.dev"), "braintrust.api_url"),
    (config_key("braintrust", api_url=f"http://bt:{SECRET}@127.0.0.1:8787"), "braintrust.api_url"),
    (nested(("tags", "docs"), f"https://me:{SECRET}@wiki.example.com/page"), "tags.docs"),
    (endpoint(0, flavor=f"https://me:{SECRET}@x.example.com"), "endpoints[bt-dev-llama-3-1-8b].flavor"),
    (config_key("workspace", host=f"https:admin:{SECRET}@acme.cloud.databricks.com"), "workspace.host"),
    (config_key("braintrust", api_url=f"admin:{SECRET}@api.braintrust.dev"), "braintrust.api_url"),
], ids=["host", "host-user-only", "host-other-scheme", "api-url", "api-url-loopback", "tag-value", "enum-field",
        "host-without-slashes", "api-url-without-scheme"])
def test_a_url_with_user_information_is_refused_and_never_echoed(mutation: Mutation, field: str) -> None:
    found = refusal(mutation)
    assert any(line.startswith(f"Pulumi.dev.yaml: {field}: ") for line in found), found
    assert SECRET not in "\n".join(found)


@pytest.mark.parametrize(("where", "field"), [
    (lambda d: d["config"].update({"pulumi:template": f"https://u:{SECRET}@x.example.com"}), "config.pulumi:template"),
    (lambda d: d.update({"encryptionsalt": f"https://u:{SECRET}@x.example.com"}), "encryptionsalt"),
    (lambda d: d["config"].update({"pulumi:note": FAKE_PAT}), "config.pulumi:note"),
], ids=["pulumi-namespace", "top-level", "plain-token-in-pulumi-namespace"])
def test_keys_the_project_does_not_read_are_still_checked_for_credentials(
        where: Callable[[dict[str, Any]], None], field: str) -> None:
    document = copy.deepcopy(DEV)
    where(document)
    with pytest.raises(StackError) as info:
        validate_document(document, stack="dev", file="Pulumi.dev.yaml")
    found = [str(p) for p in info.value.problems]
    assert any(line.startswith(f"Pulumi.dev.yaml: {field}: ") for line in found), found
    assert SECRET not in "\n".join(found) and "dapi0123" not in "\n".join(found)


@pytest.mark.parametrize(("value", "what"), [(1234, "number"), (12.5, "number"), (True, "true/false"),
                                             (datetime.date(2024, 1, 1), "a date"), (None, "is empty")])
def test_a_number_where_text_belongs_says_quote_it(value: Any, what: str) -> None:
    found = refusal(nested(("tags", "cost-center"), value))
    assert any(line.startswith("Pulumi.dev.yaml: tags.cost-center: ") and what in line
               and ("quote it" in line or value is None) for line in found), found


def test_render_never_prints_a_password_written_in_a_url(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV_TEXT.replace("    publish: false\n",
                                     f"    publish: false\n    api_url: https://u:{SECRET}@bt.example.com\n"))
    for command in ("render", "validate"):
        result = run_cli(command, str(path))
        assert result.returncode == 1 and SECRET not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("url", "ok"), [
    ("https://api.braintrust.dev", True),
    ("https://braintrust.internal.example.com:8443/api", True),
    ("http://127.0.0.1:8787/braintrust", True),
    ("http://localhost:8787", True),
    ("http://api.braintrust.dev", False),
    ("http://10.1.2.3:8787", False),
    ("https://api..braintrust.dev", False),
    ("https://api.braintrust.dev?x=1", False),
    ("ftp://api.braintrust.dev", False),
    ("api.braintrust.dev", False),
    ("https://api.braintrust.dev:", False),
    ("https://bt.example.com/a b", False),
])
def test_braintrust_api_url_is_https_or_loopback_http(url: str, ok: bool) -> None:
    if ok:
        assert validate(config_key("braintrust", api_url=url)).spec.braintrust.api_url == url
    else:
        assert any(line.startswith("Pulumi.dev.yaml: braintrust.api_url: ")
                   for line in refusal(config_key("braintrust", api_url=url)))


# ---------------------------------------------------------------------------------------------
# Production policy

@pytest.mark.parametrize("stack", ["prod", "PROD", "Prod", "production", "PRODUCTION", "prod-eu", "Prod-EU",
                                   "prod_eu", "prod.eu"])
def test_production_is_matched_by_name_in_any_case(stack: str) -> None:
    found = refusal(lambda c: c[f"{PROJECT}:tags"].pop("owner"), base=PROD, stack=stack)
    assert any("tags.owner" in line for line in found)
    # and the same file with an owner passes the production rules
    prod_without_policy = copy.deepcopy(PROD)
    prod_without_policy["config"].pop(f"{PROJECT}:policy")
    assert validate(base=prod_without_policy, stack=stack).production


@pytest.mark.parametrize("stack", ["dev", "preprod", "product", "staging-prod", "producer"])
def test_other_names_are_not_production(stack: str) -> None:
    prod_without_policy = copy.deepcopy(PROD)
    prod_without_policy["config"].pop(f"{PROJECT}:policy")
    assert not validate(base=prod_without_policy, stack=stack).production


def test_a_file_named_with_capitals_is_production(tmp_path: Path) -> None:
    text = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text().replace("  databricks-braintrust:policy: production\n",
                                                                         "")
    text = text.replace("https://acme-prod.cloud.databricks.com", "http://127.0.0.1:8787")
    found = refused_text(tmp_path, text, name="Pulumi.Prod.yaml")
    assert any("workspace.host" in line and "production" in line for line in found), found


@pytest.mark.parametrize(("mutation", "field"), [
    (config_key("workspace", host="http://127.0.0.1:8787"), "workspace.host"),
    (config_key("workspace", host="https://localhost:8443"), "workspace.host"),
    (config_key("workspace", host="http://[::1]:8787"), "workspace.host"),
    (config_key("braintrust", api_url="http://127.0.0.1:8787/braintrust"), "braintrust.api_url"),
])
@pytest.mark.parametrize("how", ["name", "policy"])
def test_production_refuses_loopback_workspaces_and_any_http_url(mutation: Mutation, field: str, how: str) -> None:
    if how == "name":
        found = refusal(mutation, base=PROD, stack="prod")
    else:
        def by_policy(c: dict[str, Any]) -> None:
            mutation(c)
            c.update({f"{PROJECT}:tags": {"owner": "x"}, f"{PROJECT}:policy": "production"})
        found = refusal(by_policy, stack="dev")
    assert any(line.startswith(f"Pulumi.{'prod' if how == 'name' else 'dev'}.yaml: {field}: ")
               and "production" in line for line in found), found


# ---------------------------------------------------------------------------------------------
# Reserved and bounded values

@pytest.mark.parametrize(("mutation", "field"), [
    (nested(("tags", "managed-by"), "me"), "tags.managed-by"),
    (nested(("tags", "Managed-By"), "me"), "tags.Managed-By"),
    (endpoint(0, tags={"managed-by": "databricks-braintrust/prod"}), "endpoints[bt-dev-llama-3-1-8b].tags.managed-by"),
    (nested(("tags", " MANAGED-BY "), "me"), "tags. MANAGED-BY "),
    (nested(("tags", "\uff4d\uff41\uff4e\uff41\uff47\uff45\uff44-by"), "me"),
     "tags.\uff4d\uff41\uff4e\uff41\uff47\uff45\uff44-by"),  # full-width
    (nested(("tags", "managed\u2010by"), "me"), "tags.managed\u2010by"),  # a look-alike hyphen
])
def test_the_ownership_tag_is_reserved(mutation: Mutation, field: str) -> None:
    found = refusal(mutation)
    assert any(line.startswith(f"Pulumi.dev.yaml: {field}: ") and "reserved" in line for line in found), found


@pytest.mark.parametrize(("mutation", "field", "ok"), [
    (endpoint(0, throughput={"min": 0, "max": 1000 * 1240}), None, True),
    (endpoint(0, throughput={"min": 0, "max": 1001 * 1240}), "throughput.max", False),
    (endpoint(0, throughput={"min": 0, "max": 10**30}), "throughput.max", False),
    (config_key("principal", secret_lifetime_days=730, rotate_before_days=14), None, True),
    (config_key("principal", secret_lifetime_days=731), "principal.secret_lifetime_days", False),
    (endpoint(0, rate_limits=[{"calls": 2**31 - 1}]), None, True),
    (endpoint(0, rate_limits=[{"calls": 2**31}]), "rate_limits[0].calls", False),
    (nested(("readiness_timeout_minutes",), 10**9), "readiness_timeout_minutes", False),
])
def test_numbers_have_upper_bounds(mutation: Mutation, field: str | None, ok: bool) -> None:
    if ok:
        assert validate(mutation)
    else:
        assert field is not None and any(field in line for line in refusal(mutation))


@pytest.mark.parametrize(("mutation", "field"), [
    (endpoint(0, throughput={"min": 0, "max": True}), "throughput.max"),
    (endpoint(0, throughput={"min": False, "max": 1240}), "throughput.min"),
    (endpoint(0, rate_limits=[{"calls": True}]), "rate_limits[0].calls"),
    (config_key("principal", secret_lifetime_days=True), "principal.secret_lifetime_days"),
    (config_key("principal", rotate_before_days=False), "principal.rotate_before_days"),
    (nested(("readiness_timeout_minutes",), True), "readiness_timeout_minutes"),
])
def test_a_boolean_is_never_a_number(mutation: Mutation, field: str) -> None:
    assert any(field in line and "number" in line for line in refusal(mutation))


def test_numbers_written_as_text_are_still_numbers() -> None:
    # Pulumi hands top-level scalars to the program as strings.
    def mutate(c: dict[str, Any]) -> None:
        c[f"{PROJECT}:readiness_timeout_minutes"] = "45"
        c[f"{PROJECT}:principal"].update(secret_lifetime_days="60", rotate_before_days="7")
        c[f"{PROJECT}:endpoints"][0]["throughput"] = {"min": "0", "max": "2480"}
    stack = validate(mutate)
    assert stack.spec.readiness_timeout_minutes == 45 and stack.spec.principal.secret_lifetime_days == 60
    assert stack.spec.endpoints[0].throughput.max == 2480  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Across stacks

def publishing(base: dict[str, Any], name: str, **braintrust: Any) -> Stack:
    document = copy.deepcopy(base)
    document["config"][f"{PROJECT}:braintrust"].update({"publish": True, **braintrust})
    return validate_document(document, stack=name, file=f"stacks/Pulumi.{name}.yaml")


@pytest.mark.parametrize(("a", "b", "clash"), [
    ({}, {}, True),
    ({"org_name": "acme"}, {"org_name": "acme"}, True),
    ({"api_url": "https://api.braintrust.dev"}, {"api_url": "https://API.braintrust.dev/"}, True),
    ({"api_url": "https://api.braintrust.dev:443"}, {}, True),
    ({"api_url": "https://bt.example.com:8443"}, {"api_url": "https://bt.example.com"}, False),
    ({"org_name": "acme"}, {}, False),
    ({"org_name": "acme"}, {"org_name": "other"}, False),
    ({"api_url": "https://bt.example.com"}, {}, False),
    ({"secret_name": "databricks-a"}, {"secret_name": "databricks-b"}, False),
    ({"publish": False}, {}, True),
    ({"publish": False}, {"publish": False}, True),
], ids=["default-org", "same-org", "same-api-other-spelling", "default-port", "other-port",
        "org-vs-default", "other-org", "other-api",
        "other-name", "one-not-published", "neither-published"])
def test_two_stacks_naming_one_secret_in_one_organization_are_refused(
        a: dict[str, Any], b: dict[str, Any], clash: bool) -> None:
    first, second = publishing(DEV, "dev", **a), publishing(DEV, "dev-copy", **b)
    problems = check_across([first, second])
    if clash:
        assert len(problems) == 1
        line = str(problems[0])
        assert line.startswith("stacks/Pulumi.dev-copy.yaml: braintrust.secret_name: ")
        assert "stacks/Pulumi.dev.yaml" in line and line.endswith(")")
    else:
        assert problems == []


def test_validate_over_a_folder_refuses_a_copied_stack_naming_both_files(tmp_path: Path) -> None:
    text = (ROOT / "stacks" / "Pulumi.staging.yaml").read_text()
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    (tmp_path / "Pulumi.staging-copy.yaml").write_text(text.replace("bt-stg-", "bt-cp-"))
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stderr.splitlines() if "secret_name" in line)
    assert str(tmp_path / "Pulumi.staging-copy.yaml") in line and str(tmp_path / "Pulumi.staging.yaml") in line


def test_one_file_named_twice_is_one_stack_not_a_copy_of_itself() -> None:
    prod = ROOT / "stacks" / "Pulumi.prod.yaml"  # publishes, so a copy of it would be refused
    result = run_cli("validate", "prod", str(prod), "./stacks/Pulumi.prod.yaml", "stacks")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Pulumi.prod.yaml") == 1


def test_a_symlink_under_another_stack_name_is_a_second_stack(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.prod.yaml").write_text((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    (tmp_path / "Pulumi.prod-eu.yaml").symlink_to(tmp_path / "Pulumi.prod.yaml")
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1 and "is also the secret_name of" in result.stderr, result.stderr


def test_more_endpoints_than_a_workspace_serves_are_refused_before_validating_them() -> None:
    many = [{"name": f"bt-e{i}", "pay_per_token": True} for i in range(1001)]
    found = refusal(lambda c: c.update({f"{PROJECT}:endpoints": many}))
    assert found == [found[0]] and found[0].startswith("Pulumi.dev.yaml: endpoints: lists 1001 endpoints")


def test_a_file_of_many_problems_reports_the_first_hundred_and_says_there_are_more() -> None:
    bad = [{"name": f"bad name {i}", "foundation_model": f"no-such-model-{i}", "throughput": {"max": 1}}
           for i in range(300)]
    found = refusal(lambda c: c.update({f"{PROJECT}:endpoints": bad}))
    assert len(found) == 101 and "more problems than the 100 above" in found[-1]


@pytest.mark.parametrize("comment", [
    f"# databricks_token: {FAKE_PAT}",  # a token commented out, still committed
    "    # old api_url: https://bt:hunter2@bt.example.com",
    "  databricks-braintrust:policy: standard  # key sk-abcdefghijklmnopqrstuvwxyz",
], ids=["token", "url-password", "after-a-value"])
def test_a_credential_in_a_comment_is_refused_unseen(tmp_path: Path, comment: str) -> None:
    text = DEV_TEXT.replace("  databricks-braintrust:tags:\n", f"{comment}\n  databricks-braintrust:tags:\n")
    found = refused_text(tmp_path, text)
    assert any("line 27: a comment holds" in line for line in found), found
    joined = "\n".join(found)
    assert "dapi0123" not in joined and "hunter2" not in joined and "sk-abcdef" not in joined


def test_a_comment_with_a_plain_url_or_a_hash_in_a_value_is_fine(tmp_path: Path) -> None:
    text = DEV_TEXT.replace("    environment: dev\n",
                            "    environment: dev  # see https://wiki.example.com/#ml-platform\n"
                            '    docs: "https://wiki.example.com/page#top"\n')
    assert load_text(tmp_path, text).spec.tags["docs"] == "https://wiki.example.com/page#top"


# ---------------------------------------------------------------------------------------------
# The AI Gateway, traffic splits and endpoint settings (issue 19): each bad value is refused
# offline, naming the endpoint, the field and the fix.

LLAMA, CHURN, PPT = "bt-dev-llama-3-1-8b", "bt-dev-churn-scorer", "databricks-meta-llama-3-3-70b-instruct"


def versions(*entries: dict[str, Any]) -> Mutation:
    """The churn scorer serving `entries` under models: in place of model:."""
    def mutate(c: dict[str, Any]) -> None:
        ep = c[f"{PROJECT}:endpoints"][2]
        for key in ("model", "workload_size", "scale_to_zero"):
            ep.pop(key, None)
        ep["models"] = [{"name": "main.ml.churn_scorer", **e} for e in entries]
    return mutate


GATEWAY_BAD_INPUT = [
    ("unknown-guardrail-key", endpoint(0, guardrails={"input": {"safety": True, "toxicity": True}}),
     f"endpoints[{LLAMA}].guardrails.input.toxicity", "takes safety and pii"),
    ("unknown-guardrail-side", endpoint(0, guardrails={"request": {"safety": True}}),
     f"endpoints[{LLAMA}].guardrails.request", "takes input and output"),
    ("pii-behaviour-unknown", endpoint(0, guardrails={"output": {"pii": "REDACT"}}),
     f"endpoints[{LLAMA}].guardrails.output.pii", "use one of those"),
    ("traffic-not-100", versions({"version": "3", "traffic": 60}, {"version": "4", "traffic": 30}),
     f"endpoints[{CHURN}].models", "adds up to 90, not 100"),
    ("traffic-missing", versions({"version": "3", "traffic": 60}, {"version": "4"}),
     f"endpoints[{CHURN}].models[1].traffic", "give each its percent"),
    ("version-listed-twice", versions({"version": "3", "traffic": 50}, {"version": "3", "traffic": 50}),
     f"endpoints[{CHURN}].models[1].version", "listed twice"),
    ("traffic-over-100", versions({"version": "3", "traffic": 150}, {"version": "4", "traffic": -50}),
     f"endpoints[{CHURN}].models[0].traffic", "less than or equal to 100"),
    ("model-and-models", lambda c: (versions({"version": "4"})(c),
                                    c[f"{PROJECT}:endpoints"][2].update(model={"name": "main.ml.churn_scorer",
                                                                               "version": "3"})),
     f"endpoints[{CHURN}]", "exactly one of foundation_model, model, models"),
    ("workload-beside-models", lambda c: (versions({"version": "4"})(c),
                                          c[f"{PROJECT}:endpoints"][2].update(workload_size="Large")),
     f"endpoints[{CHURN}].workload_size", "move it into each entry"),
    ("group-limit-without-principal", endpoint(0, rate_limits=[{"key": "user_group", "calls": 10}]),
     f"endpoints[{LLAMA}].rate_limits[0].principal", "add principal: <the group name>"),
    ("sp-limit-without-principal", endpoint(0, rate_limits=[{"key": "service_principal", "tokens": 10}]),
     f"endpoints[{LLAMA}].rate_limits[0].principal", "application id"),
    ("sp-limit-with-an-empty-principal", endpoint(0, rate_limits=[{"key": "service_principal", "principal": "",
                                                                   "tokens": 10}]),
     f"endpoints[{LLAMA}].rate_limits[0].principal", "is empty"),
    # An empty principal would have passed the limit-of-0 rule as "one principal blocked".
    ("zero-for-an-empty-user", endpoint(0, rate_limits=[{"key": "user", "principal": "", "calls": 0}]),
     f"endpoints[{LLAMA}].rate_limits[0].principal", "name the user, group or service principal"),
    ("limit-with-neither", endpoint(0, rate_limits=[{"key": "user"}]),
     f"endpoints[{LLAMA}].rate_limits[0]", "sets neither calls nor tokens"),
    ("endpoint-limit-with-principal", endpoint(0, rate_limits=[{"key": "endpoint", "principal": "x", "calls": 1}]),
     f"endpoints[{LLAMA}].rate_limits[0].principal", "does not apply to key: endpoint"),
    ("calls-zero-for-everyone", endpoint(0, rate_limits=[{"calls": 0}]),
     f"endpoints[{LLAMA}].rate_limits[0].calls", "0 blocks every caller"),
    ("tokens-zero-for-every-user", endpoint(0, rate_limits=[{"key": "user", "tokens": 0}]),
     f"endpoints[{LLAMA}].rate_limits[0].tokens", "not unlimited"),
    ("table-catalog", endpoint(0, inference_table={"catalog_name": "main.ml", "schema_name": "logs"}),
     f"endpoints[{LLAMA}].inference_table.catalog_name", "letters, digits and '_'"),
    ("table-schema", endpoint(0, inference_table={"catalog_name": "main", "schema_name": "ai-logs"}),
     f"endpoints[{LLAMA}].inference_table.schema_name", "'ai_logs'"),
    ("table-prefix", endpoint(0, inference_table={"catalog_name": "main", "schema_name": "logs",
                                                  "table_name_prefix": "bt llama"}),
     f"endpoints[{LLAMA}].inference_table.table_name_prefix", "letters, digits and '_'"),
    ("email-not-an-address", endpoint(0, email_notifications={"on_update_failure": ["ml-platform"]}),
     f"endpoints[{LLAMA}].email_notifications.on_update_failure[0]", "name@example.com"),
    ("email-without-domain", endpoint(0, email_notifications={"on_update_success": ["ops@localhost"]}),
     f"endpoints[{LLAMA}].email_notifications.on_update_success[0]", "not an email address"),
    ("guardrails-on-pay-per-token", endpoint(3, guardrails={"input": {"safety": True}}),
     f"endpoints[{PPT}].guardrails", "its AI Gateway settings would govern every user"),
    ("limits-on-pay-per-token", endpoint(3, rate_limits=[{"calls": 5}]),
     f"endpoints[{PPT}].rate_limits", "Databricks' shared endpoint"),
    ("table-on-pay-per-token", endpoint(3, inference_table={"catalog_name": "main", "schema_name": "logs"}),
     f"endpoints[{PPT}].inference_table", "Databricks' shared endpoint"),
    ("usage-on-pay-per-token", endpoint(3, usage_tracking=True),
     f"endpoints[{PPT}].usage_tracking", "Databricks' shared endpoint"),
    ("notifications-on-pay-per-token", endpoint(3, email_notifications={"on_update_success": ["a@b.io"]}),
     f"endpoints[{PPT}].email_notifications", "belongs to Databricks"),
    ("fallback", endpoint(0, fallback={"enabled": True}),
     f"endpoints[{LLAMA}].fallback", "only for endpoints that serve external models"),
    ("budget-policy-id", endpoint(0, budget_policy_id="policy with spaces"),
     f"endpoints[{LLAMA}].budget_policy_id", "copy the policy's id"),
]


@pytest.mark.parametrize(("mutation", "field", "words"), [g[1:] for g in GATEWAY_BAD_INPUT],
                         ids=[g[0] for g in GATEWAY_BAD_INPUT])
def test_bad_gateway_traffic_and_settings_input_is_refused_at_its_field_with_a_fix(
        mutation: Mutation, field: str, words: str) -> None:
    found = refusal(mutation)
    assert any(line.startswith(f"Pulumi.dev.yaml: {field}: ") and words in line for line in found), found


def test_a_limit_of_zero_for_a_named_principal_is_accepted_with_a_warning_that_it_blocks_them() -> None:
    stack = validate(endpoint(0, rate_limits=[{"key": "user_group", "principal": "contractors", "calls": 0}]))
    warnings = [str(w) for w in stack.warnings]
    assert any(f"endpoints[{LLAMA}].rate_limits[0].calls: warning: blocks 'contractors' entirely" in w
               and "not unlimited" in w for w in warnings), warnings


def test_every_gateway_setting_and_a_traffic_split_are_accepted_together() -> None:
    stack = validate(lambda c: (
        endpoint(0, usage_tracking=True, description="Llama for Braintrust", budget_policy_id="a1b2-c3",
                 rate_limits=[{"key": "endpoint", "calls": 600}, {"key": "user", "tokens": 20000},
                              {"key": "user", "principal": "alice@example.com", "calls": 5},
                              {"key": "service_principal", "principal": "6f1c0e2a", "tokens": 100}],
                 guardrails={"input": {"safety": True, "pii": "BLOCK"}, "output": {"pii": "MASK"}},
                 inference_table={"catalog_name": "main", "schema_name": "ai_logs", "table_name_prefix": "bt"},
                 email_notifications={"on_update_success": ["ml@example.com"], "on_update_failure": []})(c),
        versions({"version": "3", "traffic": 90}, {"version": "4", "traffic": 10})(c)))
    churn = stack.spec.endpoints[2]
    assert isinstance(churn, CustomModelEndpoint)
    assert [(v.version, v.traffic) for v in churn.versions()] == [("3", 90), ("4", 10)]


# Capacity: the key, the bounds and the unit each model's group takes (components/catalog.py)

def unit_model(**fields: Any) -> Mutation:
    """Endpoint 0 serving Llama 4 Maverick, a unit model, with ``fields`` over 50 units."""
    def mutate(c: dict[str, Any]) -> None:
        entry = c[f"{PROJECT}:endpoints"][0]
        entry.pop("throughput", None)
        entry.update({"foundation_model": "meta-llama-4-maverick", "model_units": 50, **fields})
        for key in [k for k, v in entry.items() if v is None]:
            del entry[key]
    return mutate


@pytest.mark.parametrize(("mutation", "field", "words"), [
    (unit_model(throughput={"min": 0, "max": 3250}), "endpoints[bt-dev-llama-3-1-8b].throughput",
     ("Meta Llama 4 Maverick is bought in model units", "write `model_units: N` instead of throughput")),
    (unit_model(model_units=None), "endpoints[bt-dev-llama-3-1-8b].model_units",
     ("is required", "bought in model units", "model_units: 50")),
    (endpoint(0, model_units=50), "endpoints[bt-dev-llama-3-1-8b].model_units",
     ("Meta Llama 3.1 8B Instruct is bought in tokens per second", "instead of model_units")),
    (unit_model(model_units=0), "endpoints[bt-dev-llama-3-1-8b].model_units",
     ("0 buys nothing", "cannot scale to zero", "write a positive number")),
    (unit_model(model_units=-5), "endpoints[bt-dev-llama-3-1-8b].model_units", ("-5 buys nothing",)),
    (unit_model(model_units=1001), "endpoints[bt-dev-llama-3-1-8b].model_units",
     ("1001 is above this project's bound of 1000 units", "use at most 1000")),
    (endpoint(0, burst_scaling=True), "endpoints[bt-dev-llama-3-1-8b].burst_scaling",
     ("only unit models burst", "remove burst_scaling")),
    (endpoint(0, entity_version="3", throughput={"min": 0, "max": 1240}),
     "endpoints[bt-dev-llama-3-1-8b].throughput.max",
     ("1240 is not a multiple of 19000 tokens/s", "version 3", "use 19000")),
    (unit_model(description="the team's Maverick"), "endpoints[bt-dev-llama-3-1-8b].description",
     ("served in model units", "/serving-endpoints/pt", "takes no description", "remove it")),
], ids=["throughput-on-unit-model", "unit-model-without-units", "units-on-band-model", "zero-units",
        "negative-units", "units-above-bound", "burst-on-band-model", "chunk-of-another-version",
        "description-on-unit-model"])
def test_a_capacity_the_model_cannot_take_is_refused_naming_the_endpoint_and_the_fix(
        mutation: Mutation, field: str, words: tuple[str, ...]) -> None:
    found = refusal(mutation)
    assert any(f"{field}: " in line and all(w in line for w in words) for line in found), found


@pytest.mark.parametrize("fields", [{}, {"burst_scaling": False}, {"entity_version": "2", "model_units": 1000}])
def test_a_unit_model_in_units_is_accepted(fields: dict[str, Any]) -> None:
    stack = validate(unit_model(**fields))
    entry = stack.spec.endpoints[0]
    assert entry.model_units == fields.get("model_units", 50)  # type: ignore[union-attr]
    assert entry.throughput is None  # type: ignore[union-attr]
    assert stack.warnings == ()


def test_llama_8b_version_3_at_19000_is_not_refused() -> None:
    stack = validate(endpoint(0, entity_version="3", throughput={"min": 0, "max": 19000}))
    assert stack.warnings == ()
