"""What a fresh workspace holds, as the emulator's own data: independent of the project's
catalog on purpose, so a test can check that the catalog's entries exist in "the workspace".

Throughput chunks (tokens/second per provisioned-throughput unit) are per model; Databricks
publishes them per model in the UI. 970 (Mistral 7B), 1240 (Llama 3.1 8B) and 2400 (Llama 3.1
70B) come from public examples; the Mixtral 8x7B value (1080) is invented for the emulator.
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

# system.ai foundation models eligible for provisioned throughput: name -> versions, chunk, task.
SYSTEM_AI_MODELS: dict[str, dict] = {
    "system.ai.meta_llama_v3_1_70b_instruct": {"versions": ["1", "2", "3"], "chunk": 2400, "task": CHAT},
    "system.ai.meta_llama_v3_1_8b_instruct": {"versions": ["1", "2", "3"], "chunk": 1240, "task": CHAT},
    "system.ai.llama_v3_3_70b_instruct": {"versions": ["1", "2"], "chunk": 2400, "task": CHAT},
    "system.ai.mistral_7b_instruct_v0_1": {"versions": ["1", "2", "3"], "chunk": 970, "task": CHAT},
    "system.ai.mistral_7b_instruct_v0_2": {"versions": ["1", "2", "3"], "chunk": 970, "task": CHAT},
    "system.ai.mixtral_8x7b_instruct_v0_1": {"versions": ["1", "2", "3"], "chunk": 1080, "task": CHAT},
}

# Pay-per-token endpoints present in every workspace (foundation model APIs). Llama 3.1 70B was
# replaced by Llama 3.3 70B on pay-per-token; Mixtral and MPT pay-per-token endpoints are retired,
# so they are absent here.
PAY_PER_TOKEN_ENDPOINTS: dict[str, dict] = {
    "databricks-meta-llama-3-3-70b-instruct": {
        "foundation_model": "databricks-meta-llama-3-3-70b-instruct",
        "display_name": "Meta Llama 3.3 70B Instruct", "task": CHAT},
    "databricks-meta-llama-3-1-8b-instruct": {
        "foundation_model": "databricks-meta-llama-3-1-8b-instruct",
        "display_name": "Meta Llama 3.1 8B Instruct", "task": CHAT},
    "databricks-meta-llama-3-1-405b-instruct": {
        "foundation_model": "databricks-meta-llama-3-1-405b-instruct",
        "display_name": "Meta Llama 3.1 405B Instruct", "task": CHAT},
    "databricks-gte-large-en": {
        "foundation_model": "databricks-gte-large-en",
        "display_name": "GTE Large (En)", "task": EMBEDDINGS},
}

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
