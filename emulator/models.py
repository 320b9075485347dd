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


class Workspace:
    def __init__(self, *, ready_after: float, models: list[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.initial_ready_after = ready_after
        self.seed_models = [seed.parse_model_arg(m) for m in (models or [])]
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: what `POST /_emulator/reset` does."""
        with self.lock:
            self.ready_after = self.initial_ready_after
            self.clock_offset = 0.0
            self.counter = 0
            self.service_principals: dict[str, dict[str, Any]] = {}  # SCIM id -> SCIM record
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
                self.endpoints[name] = self._pay_per_token_endpoint(name, info)

    def add_uc_model(self, name: str, version: str, task: str | None) -> None:
        model = self.uc_models.setdefault(name, {"versions": [], "chunk": None, "task": task})
        if version not in model["versions"]:
            model["versions"].append(version)
        if task:
            model["task"] = task

    def _pay_per_token_endpoint(self, name: str, info: dict[str, Any]) -> dict[str, Any]:
        entity = {
            "name": name,
            "foundation_model": {"name": info["foundation_model"], "display_name": info["display_name"],
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

    def principal_exists(self, key: str, name: str) -> bool:
        if key == "user_name":
            return name in seed.USERS
        if key == "group_name":
            return name in seed.GROUPS
        return self.sp_by_application_id(name) is not None

    def delete_service_principal(self, sp_id: str) -> None:
        """Deleting a principal revokes its secrets, its minted tokens and its grants."""
        sp = self.service_principals.pop(sp_id)
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

    _PERSISTED = ("clock_offset", "counter", "service_principals", "secrets", "tokens",
                  "uc_models", "endpoints", "ai_secrets", "ready_after")

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
