"""The workspace's state (like moto's models.py): identities, OAuth secrets and tokens, Unity
Catalog models, serving endpoints with their ACLs, Braintrust AI secrets, and the clock.

All state is plain JSON-able data so ``--state`` can persist it; HTTP lives elsewhere. Callers hold
``Workspace.lock`` for the duration of one request (the server does that), so handlers may read
and write freely. Time-dependent state (rollouts, expiry) is computed lazily from ``now()``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import seed

LEVELS = ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE")
PRINCIPAL_KEYS = ("user_name", "group_name", "service_principal_name")
ALL_USERS_GROUP = "users"


def level_rank(level: str | None) -> int:
    return LEVELS.index(level) + 1 if level in LEVELS else 0


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Principal:
    """Who is calling: the admin (PAT) or a service principal (OAuth token)."""

    kind: str  # "user" | "service_principal"
    name: str  # user name, or the service principal's application id
    is_admin: bool = False
    sp_id: str | None = None
    scopes: list[str] | None = None  # None: a PAT, all APIs
    groups: list[str] = field(default_factory=list)

    @property
    def acl_key(self) -> str:
        return "user_name" if self.kind == "user" else "service_principal_name"

    @property
    def label(self) -> str:
        return self.name if self.kind == "user" else f"service-principal:{self.name}"


PAY_PER_TOKEN_ACL = ("accept", "reject")
SCIM_EXTERNAL_ID = ("keep", "drop")
# Whether an endpoint made through /serving-endpoints/pt (model units) takes a PUT .../config
# update, and one made through /serving-endpoints a PUT .../pt/{name}/config: no public source.
PT_CONFIG_SWITCH = ("refuse", "accept")
# Braintrust's OpenAPI spec is silent on these (emulator/README.md, "Switches"):
BRAINTRUST_UNKNOWN_ID = ("404", "400", "403")  # the status of an unknown or deleted record
BRAINTRUST_PUT_OMITTED = ("clear", "keep")  # a PUT onto a name: omitted type/metadata
BRAINTRUST_PUT_NULL_SECRET = ("keep", "clear")  # a PUT onto a name: "secret": null
BRAINTRUST_OTHER_ORG = ("403", "400", "empty")  # org_name naming another organization


@dataclass
class Switches:
    """The behaviours no public source settles, and the ACL shuffle's seed: each a CLI flag,
    an EmulatorServer keyword and a key of the admin `settings` body. Defaults are the
    emulator's behaviour before the switches existed."""

    ready_after: float = 5.0
    pay_per_token_acl: str = "accept"  # "reject": ACL writes on databricks-* endpoints refused
    propagation_delay: float = 0.0  # seconds of the emulator clock a new principal stays unknown
    retired: tuple[str, ...] = ()  # system.ai entities this workspace refuses to serve
    scim_external_id: str = "keep"  # "drop": SCIM does not store externalId
    # "accept": the config API of the other family (/pt vs ordinary) updates an endpoint too
    pt_config_switch: str = "refuse"
    seed: int = 0  # ACL entries are answered in an order drawn from this seed
    braintrust_unknown_id: str = "404"  # GET/PATCH/DELETE of an unknown ai_secret: 404, 400 or 403
    braintrust_put_omitted: str = "clear"  # "keep": a PUT keeps the omitted type and metadata
    braintrust_put_null_secret: str = "keep"  # "clear": a PUT with "secret": null clears it
    braintrust_other_org: str = "403"  # another organization's org_name: 403, 400, or "empty" lists

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ValueError naming the switch and its valid values."""
        if isinstance(self.ready_after, bool) or not isinstance(self.ready_after, int | float) \
                or self.ready_after < 0:
            raise ValueError("ready_after must be a non-negative number of seconds")
        if self.pay_per_token_acl not in PAY_PER_TOKEN_ACL:
            raise ValueError(f"pay_per_token_acl must be one of {', '.join(PAY_PER_TOKEN_ACL)}")
        if isinstance(self.propagation_delay, bool) \
                or not isinstance(self.propagation_delay, int | float) or self.propagation_delay < 0:
            raise ValueError("propagation_delay must be a non-negative number of seconds")
        if isinstance(self.retired, str) or not all(isinstance(r, str) and r for r in self.retired):
            raise ValueError("retired must be a list of system.ai model names")
        self.retired = tuple(qualify_system_model(r) for r in self.retired)
        if self.scim_external_id not in SCIM_EXTERNAL_ID:
            raise ValueError(f"scim_external_id must be one of {', '.join(SCIM_EXTERNAL_ID)}")
        if self.pt_config_switch not in PT_CONFIG_SWITCH:
            raise ValueError(f"pt_config_switch must be one of {', '.join(PT_CONFIG_SWITCH)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer")
        for name, allowed in (("braintrust_unknown_id", BRAINTRUST_UNKNOWN_ID),
                              ("braintrust_put_omitted", BRAINTRUST_PUT_OMITTED),
                              ("braintrust_put_null_secret", BRAINTRUST_PUT_NULL_SECRET),
                              ("braintrust_other_org", BRAINTRUST_OTHER_ORG)):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # `{"braintrust_unknown_id": 403}` means "403"
                setattr(self, name, value)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")

    def as_dict(self) -> dict[str, Any]:
        return {"ready_after": self.ready_after, "pay_per_token_acl": self.pay_per_token_acl,
                "propagation_delay": self.propagation_delay, "retired": list(self.retired),
                "scim_external_id": self.scim_external_id, "seed": self.seed,
                "pt_config_switch": self.pt_config_switch,
                "braintrust_unknown_id": self.braintrust_unknown_id,
                "braintrust_put_omitted": self.braintrust_put_omitted,
                "braintrust_put_null_secret": self.braintrust_put_null_secret,
                "braintrust_other_org": self.braintrust_other_org}


def qualify_system_model(name: str) -> str:
    """`mixtral_8x7b_instruct_v0_1` -> `system.ai.mixtral_8x7b_instruct_v0_1`."""
    return name if "." in name else f"system.ai.{name}"


class Workspace:
    def __init__(self, *, ready_after: float = 5.0, models: list[str] | None = None,
                 switches: Switches | None = None) -> None:
        self.lock = threading.RLock()
        self.initial = copy.deepcopy(switches) if switches else Switches(ready_after=ready_after)
        self.seed_models = [seed.parse_model_arg(m) for m in (models or [])]
        self.switches: Switches = copy.deepcopy(self.initial)
        self.ready_after: float = float(self.initial.ready_after)
        self.rng = random.Random(self.initial.seed)  # noqa: S311 - an order, not a secret
        self.reset()

    def apply(self, changes: dict[str, Any]) -> None:
        """Change switches at run time (the admin `settings` body); all or nothing."""
        unknown = set(changes) - set(self.switches.as_dict())
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(self.switches.as_dict())}")
        merged = {**self.switches.as_dict(), "ready_after": self.ready_after, **changes}
        if isinstance(merged["retired"], list):
            merged["retired"] = tuple(merged["retired"])
        new = Switches(**merged)  # validates
        if "seed" in changes:  # given, even unchanged: the order sequence starts again
            self.rng = random.Random(new.seed)  # noqa: S311 - an order, not a secret
        self.switches = new
        self.ready_after = float(new.ready_after)

    # ---- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: what `POST /_emulator/reset` does."""
        with self.lock:
            self.switches = copy.deepcopy(self.initial)
            self.ready_after = float(self.initial.ready_after)
            self.rng = random.Random(self.initial.seed)  # noqa: S311 - an order, not a secret
            self.clock_offset = 0.0
            self.counter = 0
            self.service_principals: dict[str, dict[str, Any]] = {}  # SCIM id -> SCIM record
            self.sp_created: dict[str, float] = {}  # SCIM id -> creation time (emulator clock)
            self.secrets: dict[str, dict[str, Any]] = {}  # secret id -> record (+ sp id, hash)
            self.tokens: dict[str, dict[str, Any]] = {}  # sha256(access token) -> grant
            self.uc_models: dict[str, dict[str, Any]] = {}  # full name -> {versions, chunk, task}
            self.endpoints: dict[str, dict[str, Any]] = {}  # name -> endpoint record
            self.ai_secrets: dict[str, dict[str, Any]] = {}  # Braintrust AI secrets by id
            self.rollout_failures: dict[str, str] = {}  # endpoint name -> message (next rollout)
            self.federation_policies: dict[str, list[dict[str, Any]]] = {}  # application id -> policies
            for name, info in seed.SYSTEM_AI_MODELS.items():
                self.uc_models[name] = copy.deepcopy(info)
            for name, version, task in self.seed_models:
                self.add_uc_model(name, version, task)
            for name, info in seed.PAY_PER_TOKEN_ENDPOINTS.items():
                self.endpoints[name] = self.pay_per_token_endpoint(name, info)

    def settings(self) -> dict[str, Any]:
        return {**self.switches.as_dict(), "ready_after": self.ready_after}

    def add_uc_model(self, name: str, version: str, task: str | None) -> None:
        model = self.uc_models.setdefault(name, {"versions": [], "chunk": None, "task": task})
        if version not in model["versions"]:
            model["versions"].append(version)
        if task:
            model["task"] = task

    # ---- system.ai versions and chunks -------------------------------------------------------

    def chunk_for(self, name: str, version: str) -> int | None:
        """The throughput chunk of a served version (None: not a provisioned-throughput model)."""
        model = self.uc_models.get(name)
        if model is None:
            return None
        chunk = (model.get("chunks") or {}).get(version, model.get("chunk"))
        return int(chunk) if chunk else None

    def serve_system_version(self, name: str, version: str, chunk: int | None) -> None:
        """Add a served version of a system.ai model, or change its chunk."""
        model = self.uc_models.setdefault(name, {"versions": [], "chunk": chunk, "task": seed.CHAT})
        if version not in model["versions"]:
            model["versions"].append(version)
            model["versions"].sort(key=lambda v: (len(v), v))
        if chunk is not None:
            model.setdefault("chunks", {})[version] = chunk
        if not model.get("chunk"):
            model["chunk"] = chunk

    def capacity_of(self, name: str) -> str:
        """"units" for a model bought in model units (/serving-endpoints/pt), else "band"."""
        return str((self.uc_models.get(name) or {}).get("capacity") or "band")

    def dbus_for(self, name: str, version: str) -> float | None:
        """DBU per hour for one chunk (band) or one unit (units) of a served version; the
        seed's figure where one is recorded, else the emulator's invention (a GUESS)."""
        model = self.uc_models.get(name)
        chunk = self.chunk_for(name, version)
        if model is None or not chunk:
            return None
        recorded = (model.get("dbus") or {}).get(version)
        if recorded is not None:
            return float(recorded)
        if self.capacity_of(name) == "units":
            return float(seed.UNIT_DBUS)
        return float(round(chunk / 20))  # scales with the chunk: invented

    def lifecycle_of(self, name: str) -> dict[str, Any]:
        """{state, retires_on, used_recently} of a system.ai model (active when never set)."""
        life = (self.uc_models.get(name) or {}).get("lifecycle") or {}
        return {"state": life.get("state", "active"), "retires_on": life.get("retires_on"),
                "used_recently": life.get("used_recently", True)}

    def set_lifecycle(self, name: str, state: str, retires_on: str | None, used_recently: bool) -> None:
        model = self.uc_models.setdefault(name, {"versions": [], "chunk": None, "task": seed.CHAT})
        model["lifecycle"] = {"state": state, "retires_on": retires_on, "used_recently": used_recently}

    def unserve_system_version(self, name: str, version: str) -> None:
        model = self.uc_models.get(name)
        if model is None or version not in model["versions"]:
            return
        model["versions"].remove(version)
        (model.get("chunks") or {}).pop(version, None)

    def pay_per_token_endpoint(self, name: str, info: dict[str, Any]) -> dict[str, Any]:
        entity = {
            "name": name,
            "foundation_model": {"name": info.get("foundation_model", name), "display_name": info["display_name"],
                                 "docs": "https://docs.databricks.com/machine-learning/foundation-models/",
                                 "description": info["display_name"]},
        }
        return {
            "id": uuid.uuid5(uuid.NAMESPACE_URL, f"emulator/{name}").hex,
            "name": name,
            "creator": seed.SYSTEM_CREATOR,
            "creation_timestamp": seed.SEED_TIMESTAMP_MS,
            "last_updated_timestamp": seed.SEED_TIMESTAMP_MS,
            "task": info["task"],
            "pay_per_token": True,
            "lifecycle": {"state": "active"},
            "description": "",
            "route_optimized": False,
            "tags": [],
            "ai_gateway": None,
            "rate_limits": None,
            "config": {"config_version": 1, "served_entities": [entity], "traffic_config": None},
            "pending": None,
            "failed": None,
            # Every workspace user may query pay-per-token endpoints.
            "acl": [{"key": "group_name", "name": ALL_USERS_GROUP, "level": "CAN_QUERY"}],
        }

    # ---- clock and ids -------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def next_number(self) -> int:
        self.counter += 1
        return self.counter

    # ---- identities ------------------------------------------------------------------------

    def sp_by_application_id(self, application_id: str) -> dict[str, Any] | None:
        for sp in self.service_principals.values():
            if sp.get("applicationId") == application_id:
                return sp
        return None

    def propagating(self, sp_id: str) -> bool:
        """A principal created less than `propagation_delay` seconds ago (emulator clock): SCIM
        lists it, but get by id, the permissions API and the secrets API do not know it yet."""
        created = self.sp_created.get(sp_id)
        return created is not None and self.now() < created + self.switches.propagation_delay

    def principal_exists(self, key: str, name: str) -> bool:
        if key == "user_name":
            return name in seed.USERS
        if key == "group_name":
            return name in seed.GROUPS
        sp = self.sp_by_application_id(name)
        return sp is not None and not self.propagating(sp["id"])

    def delete_service_principal(self, sp_id: str) -> None:
        """Deleting a principal revokes its secrets, its minted tokens and its grants."""
        sp = self.service_principals.pop(sp_id)
        self.sp_created.pop(sp_id, None)
        for secret_id in [k for k, s in self.secrets.items() if s["sp_id"] == sp_id]:
            del self.secrets[secret_id]
        for token in [k for k, t in self.tokens.items() if t["sp_id"] == sp_id]:
            del self.tokens[token]
        app_id = sp.get("applicationId")
        for ep in self.endpoints.values():
            ep["acl"] = [e for e in ep["acl"]
                         if not (e["key"] == "service_principal_name" and e["name"] == app_id)]

    # ---- permissions -----------------------------------------------------------------------

    def effective_level(self, ep: dict[str, Any], principal: Principal) -> str | None:
        if principal.is_admin:
            return "CAN_MANAGE"
        best = 0
        groups = {ALL_USERS_GROUP, *principal.groups}
        for entry in ep["acl"]:
            if (entry["key"] == principal.acl_key and entry["name"] == principal.name) or (
                    entry["key"] == "group_name" and entry["name"] in groups):
                best = max(best, level_rank(entry["level"]))
        return LEVELS[best - 1] if best else None

    # ---- rollouts --------------------------------------------------------------------------

    def settle(self, ep: dict[str, Any]) -> None:
        """Finish a rollout whose time has come (lazily, on read)."""
        pending = ep.get("pending")
        if not pending or self.now() < pending["ready_at"]:
            return
        ep["pending"] = None
        if pending.get("fail_message"):
            ep["failed"] = pending
        else:
            ep["failed"] = None
            ep["config"] = {k: pending[k] for k in
                            ("config_version", "served_entities", "traffic_config",
                             "auto_capture_config") if k in pending}

    # ---- persistence -----------------------------------------------------------------------

    _PERSISTED: tuple[str, ...] = ("clock_offset", "counter", "service_principals", "sp_created", "secrets",
                  "tokens", "uc_models", "endpoints", "ai_secrets", "ready_after")

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy({k: getattr(self, k) for k in self._PERSISTED})

    def restore(self, data: dict[str, Any]) -> None:
        with self.lock:
            for k in self._PERSISTED:
                if k in data:
                    setattr(self, k, data[k])

    def save(self, path: str) -> None:
        """Write atomically: a temporary file in the same folder, then rename over."""
        data = json.dumps(self.snapshot(), indent=1, sort_keys=True)
        folder = os.path.dirname(os.path.abspath(path)) or "."
        fd, tmp = tempfile.mkstemp(prefix=".emulator-state-", dir=folder)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def load(self, path: str) -> bool:
        if not os.path.exists(path):
            return False
        with open(path) as f:
            self.restore(json.load(f))
        return True
