"""The emulator's Braintrust AI-secret API against Braintrust's own OpenAPI specification
(tests/fixtures/braintrust-openapi/ai_secret.json, an excerpt of braintrustdata/braintrust-openapi
openapi/spec.json at b561b12), under every position of every Braintrust switch.

Every operation the spec defines is driven, happy paths and 400s. Each request is first checked
against the spec (a request the test calls valid must validate, one it calls invalid must not,
so the expected 400s come from the spec itself); each answer's status must be one the spec lists
for the operation (or the unknown-id switch's own position), and its JSON body must validate
against the schema the spec gives for that status, with `jsonschema`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

SPEC = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "braintrust-openapi"
                   / "ai_secret.json").read_text())
COLLECTION, ITEM = "/v1/ai_secret", "/v1/ai_secret/{ai_secret_id}"
ORG = "emulator-org"
MALFORMED = "not-a-uuid"
UNKNOWN = "0b0b0b0b-1111-4222-8333-444455556666"
SWITCHES = {"braintrust_unknown_id": ("404", "400", "403"),
            "braintrust_put_omitted": ("clear", "keep"),
            "braintrust_put_null_secret": ("keep", "clear"),
            "braintrust_other_org": ("403", "400", "empty")}
# Every position of every switch, in as few runs as the longest switch has positions (each switch
# governs its own operations, so their combinations add nothing); the first run is the defaults.
POSITIONS = [{name: values[i % len(values)] for name, values in SWITCHES.items()}
             for i in range(max(len(v) for v in SWITCHES.values()))]

# ---- the spec as JSON Schema ---------------------------------------------------------------

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(UUID_RE.fullmatch(value))


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError("no time part")
        datetime.fromisoformat(value)  # RFC 3339 with a Z or an offset
    return True


def _resolve(ref: str) -> Any:
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def schema_of(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: $refs inlined, `nullable: true` as a "null" type."""
    if isinstance(node, list):
        return [schema_of(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return schema_of(_resolve(node["$ref"]))
    out = {k: schema_of(v) for k, v in node.items() if k not in ("nullable", "description")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif not any(k in out for k in ("anyOf", "oneOf", "allOf")):
            return {}  # `{nullable: true}` alone: any value
    return out


def operation(path: str, method: str) -> dict[str, Any]:
    return SPEC["paths"][path][method.lower()]


def parameters(path: str, method: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in (_resolve(p["$ref"]) if "$ref" in p else p
                                   for p in operation(path, method).get("parameters", []))}


def request_errors(path: str, method: str, path_id: str | None, params: dict[str, Any],
                   body: Any, raw: bytes | None) -> list[str]:
    """What the spec finds wrong with a request (empty: the spec allows it)."""
    errors: list[str] = []
    declared = parameters(path, method)

    def check(name: str, value: Any) -> None:
        param = declared.get(name)
        if param is None:
            errors.append(f"{name}: not a parameter of {method} {path}")
            return
        if param["schema"].get("$ref", "").endswith("AppLimitParam") and isinstance(value, str):
            value = int(value) if re.fullmatch(r"-?[0-9]+", value) else value  # a query string
        for e in jsonschema.Draft202012Validator(schema_of(param["schema"]),
                                                 format_checker=FORMATS).iter_errors(value):
            errors.append(f"{name}: {e.message}")

    if path_id is not None:
        check("ai_secret_id", path_id)
    for name, value in params.items():
        check(name, value)
    if "starting_after" in params and "ending_before" in params:  # stated in both descriptions
        errors.append("only one of starting_after and ending_before")
    content = operation(path, method).get("requestBody", {}).get("content", {})
    if raw is not None:
        errors.append("the body is not a JSON object")
    elif body is not None and "application/json" in content:
        schema = schema_of(content["application/json"]["schema"])
        errors += [e.message for e in jsonschema.Draft202012Validator(
            schema, format_checker=FORMATS).iter_errors(body)]
    elif body is None and "application/json" in content:
        required = schema_of(content["application/json"]["schema"]).get("required")
        if required:
            errors.append(f"no body, and the schema requires {required}")
    return errors


# ---- one conformance run ---------------------------------------------------------------------


@dataclass
class Run:
    url: str
    key: str
    switches: dict[str, str]
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    http: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, *, path_id: str | None = None,
             params: dict[str, Any] | None = None, body: Any = None, raw: bytes | None = None,
             valid: bool = True, expect: int | None = None, key: str | None = "",
             headers: dict[str, str] | None = None) -> requests.Response:
        """Send one request the spec allows (`valid`) or forbids, check the answer, return it.
        `expect` is the status when it is not 200 (valid) or 400 (invalid)."""
        params = params or {}
        errors = request_errors(path, method, path_id, params, body, raw)
        if valid == bool(errors):
            self.failures.append(f"{method} {path} {params} {body!r}: the test calls it "
                                 f"{'valid' if valid else 'invalid'}, the spec says {errors or 'valid'}")
        want = expect if expect is not None else (200 if valid else 400)
        url = self.url + (path.replace("{ai_secret_id}", path_id) if path_id is not None else path)
        hdrs = dict(headers or {})
        if key is not None and method != "OPTIONS":
            hdrs["Authorization"] = f"Bearer {key or self.key}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        resp = self.http.request(method, url, params=params, data=data, headers=hdrs, timeout=10)
        self.checks += 1
        if resp.status_code != want:
            self.failures.append(f"{method} {path} {params} {body!r}: HTTP {resp.status_code} "
                                 f"{resp.text[:200]}, expected {want}")
        self._conforms(method, path, resp)
        return resp

    def _conforms(self, method: str, path: str, resp: requests.Response) -> None:
        self.checks += 1
        status = str(resp.status_code)
        responses = operation(path, method)["responses"]
        where = f"{method} {path} -> {status}"
        if status not in responses:
            # The one status the spec never lists on purpose: the unknown-id switch's position.
            if status != "404" or self.switches["braintrust_unknown_id"] != "404":
                self.failures.append(f"{where}: a status the spec does not list ({sorted(responses)})")
            return
        spec = responses[status]
        for header in spec.get("headers", {}):
            if header.lower() != "retry-after" and header not in resp.headers:
                self.failures.append(f"{where}: header {header} missing")
        content = spec.get("content", {})
        if not content:
            if resp.content:
                self.failures.append(f"{where}: a body where the spec has none")
            return
        kind = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        if kind not in content:
            self.failures.append(f"{where}: content type {kind!r}, spec: {sorted(content)}")
            return
        body = resp.json() if kind == "application/json" else resp.text
        for e in jsonschema.Draft202012Validator(schema_of(content[kind]["schema"]),
                                                 format_checker=FORMATS).iter_errors(body):
            self.failures.append(f"{where}: {e.json_path}: {e.message}")


def conformance_run(run: Run) -> None:  # one scenario, read top to bottom
    s = run.switches
    gone = int(s["braintrust_unknown_id"])
    other_write = 400 if s["braintrust_other_org"] == "400" else 403
    meta = {"api_base": "https://acme.cloud.databricks.com", "auth_type": "pat"}

    # OPTIONS: a CORS preflight, no key needed
    pre = {"Origin": "https://www.braintrust.dev", "Access-Control-Request-Method": "PUT",
           "Access-Control-Request-Headers": "authorization,content-type"}
    r = run.call("OPTIONS", COLLECTION, headers=pre, key=None)
    assert r.headers["Access-Control-Allow-Origin"] == "https://www.braintrust.dev"
    run.call("OPTIONS", ITEM, path_id=UNKNOWN, headers=pre, key=None)
    run.call("OPTIONS", ITEM, path_id=MALFORMED, valid=False, key=None)

    # POST creates; the same name again answers the existing record unmodified
    a = run.call("POST", COLLECTION, body={"name": "a", "type": "databricks", "metadata": meta,
                                           "secret": "dapi-first-secret-0123456789"}).json()
    again = run.call("POST", COLLECTION, body={"name": "a", "metadata": {"x": 1}}).json()
    assert again == a
    # PUT creates or replaces by name
    b = run.call("PUT", COLLECTION, body={"name": "b", "type": "databricks", "metadata": meta,
                                          "secret": "dapi-second-secret-0123456789",
                                          "org_name": ORG}).json()
    kept = run.call("PUT", COLLECTION, body={"name": "b", "type": "databricks", "metadata": meta}).json()
    assert kept["id"] == b["id"] and kept["preview_secret"] == b["preview_secret"]  # omitted: kept
    nulled = run.call("PUT", COLLECTION, body={"name": "b", "type": "databricks", "metadata": meta,
                                               "secret": None}).json()
    cleared = s["braintrust_put_null_secret"] == "clear"
    assert (nulled["preview_secret"] is None) == cleared
    bare = run.call("PUT", COLLECTION, body={"name": "b"}).json()
    if s["braintrust_put_omitted"] == "keep":
        assert bare["type"] == "databricks" and bare["metadata"] == meta
    else:
        assert bare["type"] is None and bare["metadata"] is None
    run.call("PUT", COLLECTION, body={"name": "b", "type": "databricks", "metadata": meta,
                                      "secret": "dapi-second-secret-0123456789"})
    extra = run.call("PUT", COLLECTION, body={"name": "c", "colour": "red"}).json()  # ignored
    assert "colour" not in extra
    # every field the spec types, wrong: 400 and nothing stored
    for bad in ({"name": 5}, {"name": {"a": 1}}, {}, {"name": "d", "type": 3},
                {"name": "d", "metadata": "x"}, {"name": "d", "metadata": [1]},
                {"name": "d", "secret": 5}, {"name": "d", "org_name": 7}, {"name": None}):
        for method in ("PUT", "POST"):
            run.call(method, COLLECTION, body=bad, valid=False)
    run.call("PUT", COLLECTION, raw=b'{"name": ', valid=False)
    run.call("PUT", COLLECTION, raw=b'["name"]', valid=False)
    run.call("PUT", COLLECTION, body={"name": "d", "org_name": "another-org"}, expect=other_write)
    run.call("POST", COLLECTION, body={"name": "d", "org_name": "another-org"}, expect=other_write)

    # the list, with every parameter, newest first
    everything = run.call("GET", COLLECTION).json()["objects"]
    ids = [o["id"] for o in everything]
    assert [o["name"] for o in everything] == ["c", "b", "a"]  # nothing from the refused bodies
    assert [o["id"] for o in run.call("GET", COLLECTION, params={"limit": "1"}).json()["objects"]] == ids[:1]
    assert run.call("GET", COLLECTION, params={"limit": "0"}).json()["objects"] == []
    run.call("GET", COLLECTION, params={"limit": "-1"}, valid=False)
    run.call("GET", COLLECTION, params={"limit": "two"}, valid=False)
    pages, cursor = [], None
    while True:  # forwards, one at a time
        page = run.call("GET", COLLECTION, params={"limit": "1", **(
            {"starting_after": cursor} if cursor else {})}).json()["objects"]
        if not page:
            break
        pages.append(page[0]["id"])
        cursor = page[0]["id"]
    assert pages == ids
    back = run.call("GET", COLLECTION, params={"ending_before": ids[2], "limit": "1"}).json()["objects"]
    assert [o["id"] for o in back] == [ids[1]]
    back = run.call("GET", COLLECTION, params={"ending_before": ids[2]}).json()["objects"]
    assert [o["id"] for o in back] == ids[:2]
    run.call("GET", COLLECTION, params={"starting_after": ids[0], "ending_before": ids[2]}, valid=False)
    run.call("GET", COLLECTION, params={"starting_after": MALFORMED}, valid=False)
    run.call("GET", COLLECTION, params={"ending_before": MALFORMED}, valid=False)
    # Present but empty is no uuid either: not "no cursor" / "no filter".
    for empty in ({"starting_after": ""}, {"ending_before": ""}, {"ids": ""}, {"ids": [a["id"], ""]}):
        run.call("GET", COLLECTION, params=empty, valid=False)
    one = run.call("GET", COLLECTION, params={"ids": a["id"]}).json()["objects"]
    assert [o["id"] for o in one] == [a["id"]]
    two = run.call("GET", COLLECTION, params={"ids": [a["id"], b["id"].upper()]}).json()["objects"]
    assert {o["id"] for o in two} == {a["id"], b["id"]}
    run.call("GET", COLLECTION, params={"ids": [a["id"], MALFORMED]}, valid=False)
    assert run.call("GET", COLLECTION, params={"ids": UNKNOWN}).json()["objects"] == []
    named = run.call("GET", COLLECTION, params={"ai_secret_name": "b"}).json()["objects"]
    assert [o["id"] for o in named] == [b["id"]]
    typed = run.call("GET", COLLECTION, params={"ai_secret_type": "databricks"}).json()["objects"]
    assert {o["id"] for o in typed} == {a["id"], b["id"]}
    typed = run.call("GET", COLLECTION, params={"ai_secret_type": ["databricks", "openai"]}).json()
    assert len(typed["objects"]) == 2
    assert len(run.call("GET", COLLECTION, params={"org_name": ORG}).json()["objects"]) == 3
    if s["braintrust_other_org"] == "empty":
        assert run.call("GET", COLLECTION, params={"org_name": "another-org"}).json()["objects"] == []
    else:
        run.call("GET", COLLECTION, params={"org_name": "another-org"}, expect=int(s["braintrust_other_org"]))

    # one record by id
    assert run.call("GET", ITEM, path_id=a["id"]).json() == a
    assert run.call("GET", ITEM, path_id=a["id"].upper()).json()["id"] == a["id"]
    run.call("GET", ITEM, path_id=MALFORMED, valid=False)
    run.call("GET", ITEM, path_id=UNKNOWN, expect=gone)

    # PATCH: typed fields checked before anything changes; objects deep-merged
    for bad in ({"name": 5}, {"name": {"a": 1}}, {"type": 3}, {"metadata": "x"}, {"secret": []}):
        run.call("PATCH", ITEM, path_id=a["id"], body=bad, valid=False)
    assert run.call("GET", ITEM, path_id=a["id"]).json() == a  # nothing stored
    merged = run.call("PATCH", ITEM, path_id=a["id"], body={"metadata": {"models": ["m"]}}).json()
    assert merged["metadata"] == {**meta, "models": ["m"]}
    same = run.call("PATCH", ITEM, path_id=a["id"], body={"name": None, "type": None}).json()
    assert same["name"] == "a" and same["type"] == "databricks"
    run.call("PATCH", ITEM, path_id=a["id"], body={"name": "b"}, expect=400)  # onto another's name
    run.call("PATCH", ITEM, path_id=MALFORMED, body={"name": "z"}, valid=False)
    run.call("PATCH", ITEM, path_id=UNKNOWN, body={"name": "z"}, expect=gone)

    # DELETE by id, then by name
    deleted = run.call("DELETE", ITEM, path_id=a["id"]).json()
    assert deleted["id"] == a["id"]
    run.call("DELETE", ITEM, path_id=a["id"], expect=gone)
    run.call("GET", ITEM, path_id=a["id"], expect=gone)
    run.call("DELETE", ITEM, path_id=MALFORMED, valid=False)
    run.call("DELETE", COLLECTION, body={"name": "b", "org_name": "another-org"}, expect=other_write)
    assert run.call("DELETE", COLLECTION, body={"name": "b", "org_name": ORG}).json()["id"] == b["id"]
    run.call("DELETE", COLLECTION, body={"name": "b"}, expect=gone)
    run.call("DELETE", COLLECTION, body={}, valid=False)
    run.call("DELETE", COLLECTION, body={"name": 5}, valid=False)
    run.call("DELETE", COLLECTION, valid=False)
    assert [o["name"] for o in run.call("GET", COLLECTION).json()["objects"]] == ["c"]

    # no key: 401 on every operation but OPTIONS
    for method, path, path_id in (("GET", COLLECTION, None), ("POST", COLLECTION, None),
                                  ("PUT", COLLECTION, None), ("DELETE", COLLECTION, None),
                                  ("GET", ITEM, extra["id"]), ("PATCH", ITEM, extra["id"]),
                                  ("DELETE", ITEM, extra["id"])):
        body = {"name": "c"} if method in ("POST", "PUT", "DELETE") and path == COLLECTION else None
        run.call(method, path, path_id=path_id, body=body, key=None, expect=401)
        run.call(method, path, path_id=path_id, body=body, key="sk-wrong", expect=401)
    assert run.call("GET", ITEM, path_id=extra["id"]).json()["id"] == extra["id"]


@pytest.mark.parametrize("position", POSITIONS, ids=lambda p: "-".join(p.values()))
def test_every_ai_secret_operation_conforms_to_braintrusts_openapi_spec(emulator, position) -> None:
    assert {k: emulator.settings(**position)[k] for k in position} == position
    run = Run(emulator.braintrust_url, emulator.braintrust_api_key, position)
    conformance_run(run)
    assert not run.failures, "\n".join(run.failures)
    assert run.checks > 150
    print(f"{run.checks} checks passed")


def test_the_spec_excerpt_is_the_one_the_emulator_cites() -> None:
    source = SPEC["x-source"]
    assert source["repository"].endswith("braintrustdata/braintrust-openapi")
    assert source["commit"].startswith("b561b12")
    ops = {(p, m) for p, item in SPEC["paths"].items() for m in item}
    assert ops == {(COLLECTION, m) for m in ("post", "put", "delete", "get", "options")} | {
        (ITEM, m) for m in ("get", "patch", "delete", "options")}


def test_the_schema_conversion_keeps_the_specs_meaning() -> None:
    """The checks above are only as strict as this conversion: a record breaking the spec fails."""
    record = schema_of({"$ref": "#/components/schemas/AISecret"})
    good = {"id": UNKNOWN, "org_id": UNKNOWN, "name": "a", "type": None, "metadata": None,
            "created": "2026-07-01T00:00:00.000Z", "preview_secret": None}
    validator = jsonschema.Draft202012Validator(record, format_checker=FORMATS)
    assert not list(validator.iter_errors(good))
    for bad in ({**good, "name": 5}, {**good, "id": MALFORMED}, {**good, "metadata": "x"},
                {**good, "created": "yesterday"}, {k: v for k, v in good.items() if k != "org_id"}):
        assert list(validator.iter_errors(bad)), bad
