"""What a fresh workspace holds, as the emulator's own data: independent of the project's
catalog on purpose, so a test can check that the catalog's entries exist in "the workspace".

Throughput chunks (tokens/second per chunk) are per model version, as the real
get-model-optimization-info answers them. Sources: Llama 3.1 8B version 2 takes 970 and
Mistral 7B v0.2 version 1 takes 970 (terraform-provider-databricks serving/model_serving_test.go,
an acceptance test), 8B version 3 takes 19000 at 106 DBU/h per chunk (a recorded API answer,
2025), 8B version 4 at 1240 and 70B at 2400 follow Databricks' docs example (its version is not
certain). The Mixtral 8x7B value (1080) is invented for the emulator.

Unit models (Databricks' "Model units" page: Llama 4 Maverick, GPT OSS 120B/20B, Gemma 3 12B)
are bought in model units through /serving-endpoints/pt. Their unit step (UNIT_STEP) and DBU
rate are GUESSES: nobody publishes them (a third-party config uses steps of 50).
"""

from __future__ import annotations

WORKSPACE_ID = "1234567890123456"
ADMIN_USER = "admin@emulator.local"

# Users and groups a fresh workspace knows (ACL entries may only name these or a service
# principal's application id). Every identity is implicitly a member of "users".
USERS = [ADMIN_USER, "alice@example.com", "bob@example.com"]
GROUPS = ["admins", "users", "data-scientists"]

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
EMBEDDINGS = "llm/v1/embeddings"

# The unit step of a unit model, in model units: a GUESS (no public source); the admin path's
# system-models route changes it per version (`throughput_chunk_size`).
UNIT_STEP = 50
# DBU per hour for one model unit: a GUESS (no public source).
UNIT_DBUS = 2

# system.ai foundation models eligible for provisioned throughput: name -> versions, chunk (the
# default for a version without its own), chunks per version, dbus per chunk-hour per version,
# task, capacity ("band": tokens per second; "units": model units).
SYSTEM_AI_MODELS: dict[str, dict] = {
    "system.ai.meta_llama_v3_1_70b_instruct": {"versions": ["1", "2", "3"], "chunk": 2400, "task": CHAT},
    "system.ai.meta_llama_v3_1_8b_instruct": {
        "versions": ["1", "2", "3", "4"], "chunk": 1240, "chunks": {"2": 970, "3": 19000},
        "dbus": {"2": 24, "3": 106}, "task": CHAT},
    "system.ai.llama_v3_3_70b_instruct": {"versions": ["1", "2"], "chunk": 2400, "task": CHAT},
    "system.ai.mistral_7b_instruct_v0_1": {"versions": ["1", "2", "3"], "chunk": 970, "task": CHAT},
    "system.ai.mistral_7b_instruct_v0_2": {"versions": ["1", "2", "3"], "chunk": 970, "task": CHAT},
    "system.ai.mixtral_8x7b_instruct_v0_1": {"versions": ["1", "2", "3"], "chunk": 1080, "task": CHAT},
    # Entity names as a captured serving-endpoints listing (2026) answers them.
    "system.ai.llama-4-maverick": {"versions": ["1"], "chunk": UNIT_STEP, "capacity": "units", "task": CHAT},
    "system.ai.gpt-oss-120b": {"versions": ["1"], "chunk": UNIT_STEP, "capacity": "units", "task": CHAT},
    "system.ai.gpt-oss-20b": {"versions": ["1"], "chunk": UNIT_STEP, "capacity": "units", "task": CHAT},
    "system.ai.gemma-3-12b-it": {"versions": ["1"], "chunk": UNIT_STEP, "capacity": "units", "task": CHAT},
}


def _ppt(display_name: str, task: str = CHAT) -> dict[str, str]:
    return {"display_name": display_name, "task": task}


# Pay-per-token endpoints present in every workspace (foundation model APIs), as a captured
# listing (2026) names them. Llama 3.1 70B was replaced by Llama 3.3 70B on pay-per-token;
# Mixtral, MPT and Llama 3.1 405B pay-per-token endpoints are retired (405B answers 404), so
# they are absent here.
PAY_PER_TOKEN_ENDPOINTS: dict[str, dict] = {
    "databricks-meta-llama-3-3-70b-instruct": _ppt("Meta Llama 3.3 70B Instruct"),
    "databricks-meta-llama-3-1-8b-instruct": _ppt("Meta Llama 3.1 8B Instruct"),
    "databricks-llama-4-maverick": _ppt("Llama 4 Maverick"),
    "databricks-gpt-oss-120b": _ppt("GPT OSS 120B"),
    "databricks-gpt-oss-20b": _ppt("GPT OSS 20B"),
    "databricks-gemma-3-12b": _ppt("Gemma 3 12B"),
    "databricks-gte-large-en": _ppt("GTE Large (En)", EMBEDDINGS),
}

# Model lifecycle states (Databricks' "AI models maintenance policy"): legacy and deprecated
# models stay only for workspaces that used them in the 30 days before the announcement.
LIFECYCLE_STATES = ("active", "legacy", "deprecated", "retired")

# The creator of seeded endpoints, and their fixed creation time (2024-12-01T00:00:00Z, ms).
SYSTEM_CREATOR = "system@databricks.com"
SEED_TIMESTAMP_MS = 1733011200000


def parse_model_arg(value: str) -> tuple[str, str, str | None]:
    """``CATALOG.SCHEMA.NAME:VERSION[:TASK]`` -> (name, version, task). The optional task (e.g.
    ``llm/v1/completions``) is an emulator extension; without it the model is a custom model
    answering ``{"predictions": ...}``."""
    parts = value.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"--model {value!r}: expected CATALOG.SCHEMA.NAME:VERSION")
    name, version = parts[0], parts[1]
    if name.count(".") != 2 or any(not p for p in name.split(".")):
        raise ValueError(f"--model {value!r}: the name must be CATALOG.SCHEMA.NAME")
    task = parts[2] if len(parts) == 3 and parts[2] else None
    return name, version, task
