"""Workload identity federation against the emulator: a locally minted RS256 JWT exchanged at
`/oidc/v1/token` (grant token-exchange) for a service principal with a federation policy, the
way databricks-sdk's `github-oidc` auth does it in GitHub Actions, with a local stand-in for
GitHub's ID-token endpoint. No client secret exists anywhere in these tests."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.iam import ComplexValue

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:acme/databricks-braintrust:environment:dev"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
# What the stand-in for GitHub's ID-token endpoint expects as its bearer (not a Databricks secret).
REQUEST_TOKEN = "gh-runtime-request-token-for-tests"
ACCOUNT_ID = "7f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"  # the emulator's published account id


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An OIDC issuer of our own: an RSA key, its JWKS, and RS256 JWTs signed with it."""

    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> str:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                                     "n": _b64url(n), "e": _b64url(e)}]})

    def mint(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": GITHUB_ISSUER, "sub": SUBJECT, "aud": ACCOUNT_ID, "iat": now, "nbf": now,
                "exp": now + 300, **claims}
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(body).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def deploy_sp(emulator, w: WorkspaceClient) -> Any:
    """The deploying service principal: a workspace admin, as `pulumi up` needs."""
    return w.service_principals.create(display_name="gitops-deploy", active=True,
                                       groups=[ComplexValue(display="admins", value="admins")])


@pytest.fixture
def policy(emulator, deploy_sp, issuer: Issuer) -> Callable[..., dict[str, Any]]:
    def set_policy(**fields: Any) -> dict[str, Any]:
        body = {"application_id": deploy_sp.application_id, "issuer": GITHUB_ISSUER,
                "subject": SUBJECT, "jwks_json": issuer.jwks(), **fields}
        return emulator.admin("POST", "federation-policies", {k: v for k, v in body.items() if v is not None})

    return set_policy


def _exchange(url: str, client_id: str, subject_token: str, **extra: str) -> tuple[int, dict[str, Any]]:
    """What the SDK posts (oauth.retrieve_token with use_params): a form, no Authorization header."""
    form = {"grant_type": TOKEN_EXCHANGE, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "subject_token": subject_token, "client_id": client_id, "scope": "all-apis", **extra}
    req = urllib.request.Request(f"{url}/oidc/v1/token", data=urllib.parse.urlencode(form).encode(),
                                 method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _admin_error(emulator, body: dict[str, Any]) -> str:
    with pytest.raises(urllib.error.HTTPError) as info:
        emulator.admin("POST", "federation-policies", body)
    assert info.value.code == 400
    return json.loads(info.value.read())["message"]


# ---- the token-exchange grant -------------------------------------------------------------------


def test_a_token_matching_the_policy_is_exchanged_for_a_token_of_that_principal(
        emulator, deploy_sp, policy, issuer: Issuer) -> None:
    policy()
    status, body = _exchange(emulator.url, deploy_sp.application_id, issuer.mint())
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    me = WorkspaceClient(host=emulator.url, token=body["access_token"]).current_user.me()
    assert me.user_name == deploy_sp.application_id


@pytest.mark.parametrize(("claims", "why"), [
    ({"sub": "repo:acme/databricks-braintrust:pull_request"}, "subject"),
    ({"sub": "repo:evil/databricks-braintrust:environment:dev"}, "subject"),
    ({"iss": "https://token.evil.example.com"}, "issuer"),
    ({"aud": "https://some-other-audience.example.com"}, "audience"),
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
])
def test_a_token_that_does_not_match_the_policy_is_refused(
        emulator, deploy_sp, policy, issuer: Issuer, claims: dict[str, Any], why: str) -> None:
    policy()
    token = issuer.mint(**claims)
    status, body = _exchange(emulator.url, deploy_sp.application_id, token)
    assert status == 400 and body["error"] == "invalid_grant"
    assert why in body["error_description"]
    assert token not in json.dumps(body)


def test_a_token_signed_by_another_key_is_refused(emulator, deploy_sp, policy) -> None:
    policy()
    status, body = _exchange(emulator.url, deploy_sp.application_id, Issuer().mint())
    assert status == 400 and "signature" in body["error_description"]


def test_a_token_with_a_tampered_payload_is_refused(emulator, deploy_sp, policy, issuer: Issuer) -> None:
    policy()
    header, _, signature = issuer.mint(sub="repo:evil/x:environment:dev").split(".")
    forged_payload = issuer.mint().split(".")[1]  # a valid subject, but not what was signed
    status, body = _exchange(emulator.url, deploy_sp.application_id, f"{header}.{forged_payload}.{signature}")
    assert status == 400 and "signature" in body["error_description"]


def test_an_unsigned_token_is_refused(emulator, deploy_sp, policy, issuer: Issuer) -> None:
    policy()
    _, payload, _ = issuer.mint().split(".")
    none_header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    status, body = _exchange(emulator.url, deploy_sp.application_id, f"{none_header}.{payload}.")
    assert status == 400 and "RS256" in body["error_description"]


@pytest.mark.parametrize("part", [0, 1])
def test_a_token_nested_too_deeply_is_refused_not_a_500(emulator, deploy_sp, policy, issuer: Issuer,
                                                         part: int) -> None:
    policy()
    parts = issuer.mint().split(".")
    parts[part] = _b64url(b"[" * 100_000)  # json.loads raised RecursionError: a 500
    status, body = _exchange(emulator.url, deploy_sp.application_id, ".".join(parts))
    assert status == 400 and "well-formed" in body["error_description"]


def test_a_principal_without_a_policy_or_an_unknown_client_is_refused(
        emulator, deploy_sp, issuer: Issuer) -> None:
    status, body = _exchange(emulator.url, deploy_sp.application_id, issuer.mint())
    assert status == 401 and "no federation policy" in body["error_description"]
    status, body = _exchange(emulator.url, "00000000-0000-0000-0000-000000000000", issuer.mint())
    assert status == 401 and body["error"] == "invalid_client"


def test_one_matching_policy_of_several_is_enough(emulator, deploy_sp, policy, issuer: Issuer) -> None:
    policy(subject="repo:acme/databricks-braintrust:environment:prod")
    policy()  # the dev environment's subject
    status, _ = _exchange(emulator.url, deploy_sp.application_id, issuer.mint())
    assert status == 200


def test_a_custom_subject_claim_and_an_audience_list_are_honoured(
        emulator, deploy_sp, policy, issuer: Issuer) -> None:
    policy(subject_claim="repository", subject="acme/databricks-braintrust",
           audiences=["https://github.com/acme"])
    token = issuer.mint(repository="acme/databricks-braintrust", sub="anything",
                        aud=["https://github.com/acme", "other"])
    assert _exchange(emulator.url, deploy_sp.application_id, token)[0] == 200
    assert _exchange(emulator.url, deploy_sp.application_id, issuer.mint())[0] == 400


def test_the_policy_may_be_given_in_the_sdk_nested_shape(emulator, deploy_sp, issuer: Issuer) -> None:
    stored = emulator.admin("POST", "federation-policies", {
        "application_id": deploy_sp.application_id, "description": "GitHub Actions, dev",
        "oidc_policy": {"issuer": GITHUB_ISSUER, "subject": SUBJECT, "jwks_json": issuer.jwks()}})
    # The default audience is the account id, which host metadata publishes.
    assert stored["oidc_policy"]["audiences"] == [ACCOUNT_ID]
    assert stored["oidc_policy"]["subject_claim"] == "sub"
    assert _exchange(emulator.url, deploy_sp.application_id, issuer.mint())[0] == 200


def test_the_keys_may_come_from_a_jwks_uri(emulator, deploy_sp, policy, issuer: Issuer,
                                           github_stand_in: StandIn) -> None:
    policy(jwks_json=None, jwks_uri=f"{github_stand_in.url}/.well-known/jwks")
    assert _exchange(emulator.url, deploy_sp.application_id, issuer.mint())[0] == 200


def test_client_id_may_come_as_http_basic_and_the_key_set_as_an_object(emulator, deploy_sp,
                                                                      issuer: Issuer) -> None:
    emulator.admin("POST", "federation-policies", {
        "application_id": deploy_sp.application_id, "issuer": GITHUB_ISSUER, "subject": SUBJECT,
        "jwks_json": json.loads(issuer.jwks())})
    form = {"grant_type": TOKEN_EXCHANGE, "subject_token": issuer.mint(),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}
    basic = base64.b64encode(f"{deploy_sp.application_id}:".encode()).decode()
    req = urllib.request.Request(f"{emulator.url}/oidc/v1/token", data=urllib.parse.urlencode(form).encode(),
                                 method="POST", headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["access_token"]


def test_a_deactivated_principal_cannot_exchange(emulator, w, deploy_sp, policy, issuer: Issuer) -> None:
    policy()
    w.service_principals.update(deploy_sp.id, display_name="gitops-deploy", active=False)
    status, body = _exchange(emulator.url, deploy_sp.application_id, issuer.mint())
    assert status == 401 and body["error"] == "invalid_client"


def test_a_client_secret_is_not_accepted_with_the_exchange(emulator, deploy_sp, policy,
                                                           issuer: Issuer) -> None:
    policy()
    status, body = _exchange(emulator.url, deploy_sp.application_id, issuer.mint(), client_secret="x")
    assert status == 400 and body["error"] == "invalid_request"


def test_reset_removes_every_policy(emulator, deploy_sp, policy, issuer: Issuer) -> None:
    policy()
    emulator.reset()
    status, _ = _exchange(emulator.url, deploy_sp.application_id, issuer.mint())
    assert status == 401


@pytest.mark.parametrize(("change", "message"), [
    ({"application_id": None}, "application_id is required"),
    ({"issuer": None}, "issuer is required"),
    ({"subject": None}, "subject is required"),
    ({"jwks_json": None}, "exactly one of jwks_json or jwks_uri"),
    ({"jwks_uri": "http://127.0.0.1:9/jwks"}, "exactly one of jwks_json or jwks_uri"),
    ({"jwks_json": "{\"keys\": []}"}, "no RSA key"),
    ({"subjects": "typo"}, "unknown policy field"),
    ({"audiences": "not-a-list"}, "audiences must be a list"),
])
def test_a_bad_policy_body_says_what_is_wrong(emulator, deploy_sp, issuer: Issuer,
                                              change: dict[str, Any], message: str) -> None:
    body = {"application_id": deploy_sp.application_id, "issuer": GITHUB_ISSUER, "subject": SUBJECT,
            "jwks_json": issuer.jwks(), **change}
    assert message in _admin_error(emulator, {k: v for k, v in body.items() if v is not None})


def test_host_metadata_publishes_the_account_id_as_the_default_audience(emulator) -> None:
    with urllib.request.urlopen(f"{emulator.url}/.well-known/databricks-config", timeout=10) as resp:
        meta = json.loads(resp.read())
    assert meta["account_id"] == ACCOUNT_ID
    assert meta["token_federation_default_oidc_audiences"] == [ACCOUNT_ID]


# ---- the SDK's github-oidc auth, with a stand-in for GitHub's ID-token endpoint ------------------


class StandIn:
    """GitHub's ID-token endpoint as a runner sees it: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=..
    with `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` → {"value": <JWT>}; also the
    issuer's JWKS (as GitHub serves it at its well-known address)."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.claims: dict[str, Any] = {}
        self.audiences: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/.well-known/jwks":
                    self._answer(200, stand_in.issuer.jwks().encode())
                    return
                query = urllib.parse.parse_qs(url.query)
                if self.headers.get("Authorization") != f"Bearer {REQUEST_TOKEN}" or "audience" not in query:
                    self._answer(401, b'{"message": "bad request token"}')
                    return
                audience = query["audience"][0]
                stand_in.audiences.append(audience)
                value = stand_in.issuer.mint(**{"aud": audience, **stand_in.claims})
                self._answer(200, json.dumps({"count": 1, "value": value}).encode())

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def _stand_in(issuer: Issuer) -> Iterator[StandIn]:
    stand_in = StandIn(issuer)
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture
def github_stand_in(_stand_in: StandIn) -> StandIn:
    _stand_in.claims, _stand_in.audiences = {}, []
    return _stand_in


@pytest.fixture
def github_actions_env(monkeypatch: pytest.MonkeyPatch, emulator, deploy_sp,
                       github_stand_in: StandIn) -> dict[str, str]:
    """What a deploy job's environment holds: host, client id, auth type, GitHub's request pair."""
    env = {
        "DATABRICKS_HOST": emulator.url,
        "DATABRICKS_CLIENT_ID": deploy_sp.application_id,
        "DATABRICKS_AUTH_TYPE": "github-oidc",
        # GitHub's URL already has a query string; the SDK appends `&audience=...`.
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{github_stand_in.url}/_apis/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_sdk_github_oidc_auth_reaches_the_workspace_with_no_secret(
        github_actions_env, deploy_sp, policy, github_stand_in: StandIn) -> None:
    policy()
    w = WorkspaceClient()
    assert w.config.auth_type == "github-oidc"
    assert w.current_user.me().user_name == deploy_sp.application_id
    # The SDK asked GitHub for the audience host metadata published: the account id.
    assert github_stand_in.audiences and set(github_stand_in.audiences) == {ACCOUNT_ID}


def test_the_sdk_asks_for_databricks_token_audience_when_it_is_set(
        github_actions_env, monkeypatch: pytest.MonkeyPatch, deploy_sp, policy,
        github_stand_in: StandIn) -> None:
    policy(audiences=["https://github.com/acme"])
    monkeypatch.setenv("DATABRICKS_TOKEN_AUDIENCE", "https://github.com/acme")
    assert WorkspaceClient().current_user.me().user_name == deploy_sp.application_id
    assert set(github_stand_in.audiences) == {"https://github.com/acme"}


def test_the_sdk_is_refused_when_the_workflow_subject_does_not_match(
        github_actions_env, policy, github_stand_in: StandIn) -> None:
    policy()  # trusts the dev environment only
    github_stand_in.claims = {"sub": "repo:acme/databricks-braintrust:pull_request"}
    w = WorkspaceClient()
    with pytest.raises(Exception) as info:
        w.current_user.me()
    assert "invalid_grant" in str(info.value) and "subject" in str(info.value)


def test_the_sdk_is_refused_when_the_issuer_does_not_match(
        github_actions_env, policy, github_stand_in: StandIn) -> None:
    policy(issuer="https://token.actions.githubusercontent.com/acme")  # an enterprise-specific issuer
    w = WorkspaceClient()
    with pytest.raises(Exception) as info:
        w.current_user.me()
    assert "invalid_grant" in str(info.value) and "issuer" in str(info.value)


def test_the_providers_deploy_with_github_oidc_auth(github_actions_env, emulator, w, policy) -> None:
    """The provider process of `pulumi up`, configured with the stack's host only (no token), as
    in the deploy workflow: unified auth picks github-oidc from the environment."""
    from components.providers.principal import ServicePrincipal, ServicePrincipalProvider
    from testing.provider import Engine, ProviderProcess

    policy()
    proc = ProviderProcess(env=github_actions_env)
    try:
        proc.configure({"workspace": {"host": emulator.url}})
        step = Engine(proc).register(ServicePrincipal, ServicePrincipalProvider, "principal", {
            "display_name": "braintrust-gitops", "external_id": "databricks-braintrust/dev",
            "entitlements": []})
    finally:
        proc.close()
    assert step.op == "create"
    created = w.service_principals.get(step.outputs["principal_id"])
    assert created.display_name == "braintrust-gitops"
    # It was the federated deploy principal that created it, through an exchanged token.
    log = [r for r in emulator.requests() if r["path"].endswith("/ServicePrincipals") and r["method"] == "POST"]
    assert log and log[-1]["principal"] == f"service-principal:{github_actions_env['DATABRICKS_CLIENT_ID']}"
