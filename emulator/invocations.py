"""Queries: /serving-endpoints/{name}/invocations and the OpenAI-compatible paths
(/serving-endpoints/chat/completions, /completions, /embeddings with the endpoint name as
``model``). Answers are deterministic functions of the request, in OpenAI's format for
foundation-model tasks and ``{"predictions": [...]}`` for custom models.

Only callers with CAN_QUERY or CAN_MANAGE (or admins) may query; an endpoint with nothing
serving answers 400 INVALID_STATE (emulator's choice: the SDK retries 503 for minutes).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import seed
from .errors import bad_request, invalid_parameter, invalid_state, permission_denied
from .models import Workspace
from .routing import Request, Response, Route, ok
from .serving_endpoints import get_endpoint, require_level

# Fields the OpenAI client may send that the emulator accepts and ignores.
CHAT_FIELDS = {"messages", "max_tokens", "temperature", "top_p", "n", "stop", "stream", "model",
               "stream_options", "tools", "tool_choice", "response_format", "seed",
               "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "user",
               "extra_params", "usage_context", "client_request_id", "max_completion_tokens",
               "parallel_tool_calls", "metadata", "store", "reasoning_effort"}


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _queryable(ws: Workspace, req: Request, name: str | None) -> dict[str, Any]:
    if not name:
        raise bad_request("The request needs 'model': the name of a serving endpoint.")
    ep = get_endpoint(ws, name)
    require_level(ws, ep, req.caller, "CAN_QUERY", "query it")
    life = ep.get("lifecycle") or {}
    if life.get("state") in ("legacy", "deprecated") and not life.get("used_recently", True):
        # The rule is Databricks' maintenance policy; the wording is a GUESS.
        raise permission_denied(f"Endpoint '{name}' serves a {life['state']} model, available only "
                                f"to workspaces that used it in the 30 days before the announcement.")
    if not ep.get("config"):
        raise invalid_state(f"Endpoint '{name}' is not ready: it has no served entity in state "
                            f"READY yet. Wait for the config update to finish.")
    return ep


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            return str(content or "")
    return ""


def _served_entity_name(ep: dict[str, Any]) -> str:
    routes = (ep["config"].get("traffic_config") or {}).get("routes") or []
    best = max(routes, key=lambda r: r["traffic_percentage"], default=None)
    return best["served_entity_name"] if best else ep["config"]["served_entities"][0]["name"]


def _chat(ws: Workspace, ep: dict[str, Any], body: dict[str, Any]) -> Response:
    # A custom model with no declared task is a pyfunc that takes any JSON: like an MLflow
    # ChatModel or agent it answers `messages` (and `prompt`) too, as well as dataframe inputs.
    if ep.get("task") not in (seed.CHAT, None):
        serves = f"task {ep['task']}" if ep.get("task") else "a custom model"
        raise bad_request(f"Endpoint '{ep['name']}' serves {serves} and does not accept chat "
                          f"requests (messages).")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant", "tool")
            for m in messages):
        raise invalid_parameter("'messages' must be a non-empty list of {role, content} objects.")
    prompt = _last_user_text(messages)
    content = f"[{ep['name']}] You said: {prompt}"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > 0:
        content = " ".join(content.split()[:max_tokens])
    prompt_tokens = sum(_words(str(m.get("content", ""))) for m in messages)
    completion_tokens = _words(content)
    ident = "chatcmpl-" + _digest(ep["name"], messages)
    created = int(ws.now())
    model = _served_entity_name(ep)
    headers = {"served-model-name": model}
    if body.get("stream"):
        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            c = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(c)}\n\n".encode()
        raw = (chunk({"role": "assistant", "content": content}, None) + chunk({}, "stop")
               + b"data: [DONE]\n\n")
        return Response(status=200, raw=raw, content_type="text/event-stream", headers=headers)
    return Response(status=200, headers=headers, body={
        "id": ident, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


def _completion(ws: Workspace, ep: dict[str, Any], body: dict[str, Any]) -> Response:
    if ep.get("task") not in (seed.COMPLETIONS, None):
        serves = f"task {ep['task']}" if ep.get("task") else "a custom model"
        raise bad_request(f"Endpoint '{ep['name']}' serves {serves} and does not accept "
                          f"completion requests (prompt).")
    prompt = body.get("prompt")
    prompts = prompt if isinstance(prompt, list) else [prompt]
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise invalid_parameter("'prompt' must be a string or a list of strings.")
    choices = [{"index": i, "text": f" [{ep['name']}] continued: {p}", "finish_reason": "stop",
                "logprobs": None} for i, p in enumerate(prompts)]
    pt = sum(_words(str(p)) for p in prompts)
    ct = sum(_words(str(c["text"])) for c in choices)
    return Response(status=200, headers={"served-model-name": _served_entity_name(ep)}, body={
        "id": "cmpl-" + _digest(ep["name"], prompts), "object": "text_completion",
        "created": int(ws.now()), "model": _served_entity_name(ep), "choices": choices,
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    })


def _embeddings(ws: Workspace, ep: dict[str, Any], body: dict[str, Any]) -> Response:
    if ep.get("task") != seed.EMBEDDINGS:
        raise bad_request(f"Endpoint '{ep['name']}' does not serve embeddings.")
    inp = body.get("input")
    inputs = inp if isinstance(inp, list) else [inp]
    if not inputs or not all(isinstance(i, str) for i in inputs):
        raise invalid_parameter("'input' must be a string or a list of strings.")
    data = []
    for i, text in enumerate(inputs):
        h = hashlib.sha256(text.encode()).digest()
        data.append({"object": "embedding", "index": i,
                     "embedding": [round(b / 255.0 - 0.5, 6) for b in h[:16]]})
    tokens = sum(_words(str(t)) for t in inputs)
    return ok({"object": "list", "model": _served_entity_name(ep), "data": data,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _custom(ws: Workspace, ep: dict[str, Any], body: dict[str, Any]) -> Response:
    if ep.get("task"):
        raise bad_request(f"Endpoint '{ep['name']}' serves {ep['task']}; send its request format.")
    rows: list[Any]
    if "dataframe_records" in body:
        rows = body["dataframe_records"]
    elif "dataframe_split" in body:
        rows = (body["dataframe_split"] or {}).get("data") or []
    elif "instances" in body:
        rows = body["instances"]
    elif "inputs" in body:
        rows = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
    else:
        raise bad_request("Custom model endpoints take dataframe_records, dataframe_split, "
                          "instances or inputs.")
    if not isinstance(rows, list):
        raise bad_request("The input rows must be a list.")
    preds = [int(_digest(ep["name"], r)[:8], 16) / 0xFFFFFFFF for r in rows]
    return ok({"predictions": [round(p, 6) for p in preds]})


def invocations(ws: Workspace, req: Request) -> Response:
    ep = _queryable(ws, req, req.params["name"])
    body = req.json()
    if "messages" in body:
        return _chat(ws, ep, body)
    if "prompt" in body:
        return _completion(ws, ep, body)
    if "input" in body and ep.get("task") == seed.EMBEDDINGS:
        return _embeddings(ws, ep, body)
    return _custom(ws, ep, body)


def openai_chat(ws: Workspace, req: Request) -> Response:
    body = req.json()
    return _chat(ws, _queryable(ws, req, body.get("model")), body)


def openai_completions(ws: Workspace, req: Request) -> Response:
    body = req.json()
    return _completion(ws, _queryable(ws, req, body.get("model")), body)


def openai_embeddings(ws: Workspace, req: Request) -> Response:
    body = req.json()
    return _embeddings(ws, _queryable(ws, req, body.get("model")), body)


ROUTES = [
    Route("POST", r"/serving-endpoints/chat/completions", openai_chat, serving_scope=True),
    Route("POST", r"/serving-endpoints/completions", openai_completions, serving_scope=True),
    Route("POST", r"/serving-endpoints/embeddings", openai_embeddings, serving_scope=True),
    Route("POST", r"/serving-endpoints/(?P<name>[^/]+)/invocations", invocations, serving_scope=True),
]
