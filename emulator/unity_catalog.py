"""Unity Catalog model versions: /api/2.1/unity-catalog/models/{full_name}/versions.

What `w.model_versions.list("system.ai.<model>")` reads to learn which versions a workspace
serves (databricks/cli acceptance tests look the version up this way, since not every workspace
serves "1"). Wire shape: databricks.sdk.service.catalog.ModelVersionInfo. Versions of
`system.ai` models follow the admin `system-models` route; `--model` versions are listed too.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.service.catalog import ModelVersionInfo, ModelVersionInfoStatus

from . import seed
from .errors import invalid_parameter, not_found
from .models import Workspace
from .routing import Request, Response, Route, ok

BASE = r"/api/2\.1/unity-catalog/models/(?P<name>[^/]+)/versions"


def _info(name: str, version: str) -> dict[str, Any]:
    catalog, schema, model = name.split(".")
    return ModelVersionInfo(
        catalog_name=catalog, schema_name=schema, model_name=model,
        version=int(version) if version.isdigit() else None,
        status=ModelVersionInfoStatus.READY, created_at=seed.SEED_TIMESTAMP_MS,
        created_by=seed.SYSTEM_CREATOR, updated_at=seed.SEED_TIMESTAMP_MS,
        storage_location=f"s3://emulator/{catalog}/{schema}/{model}/{version}").as_dict()


def _model(ws: Workspace, name: str) -> dict[str, Any]:
    model = ws.uc_models.get(name)
    if model is None:
        raise not_found(f"Registered model '{name}' does not exist.")
    return model


def list_(ws: Workspace, req: Request) -> Response:
    name = req.params["name"]
    model = _model(ws, name)
    try:
        max_results = int(req.arg("max_results") or 0)
        start = int(req.arg("page_token") or 0)
    except ValueError:
        raise invalid_parameter("max_results and page_token must be integers") from None
    if max_results < 0 or start < 0:
        raise invalid_parameter("max_results must not be negative")
    size = min(max_results or 100, 1000)  # the server's page sizes, as the SDK documents them
    # Newest first; the API promises no order, so clients must sort themselves.
    versions = sorted(model["versions"], key=lambda v: (len(v), v), reverse=True)
    out: dict[str, Any] = {"model_versions": [_info(name, v) for v in versions[start:start + size]]}
    if start + size < len(versions):
        out["next_page_token"] = str(start + size)
    return ok(out)


def get(ws: Workspace, req: Request) -> Response:
    name, version = req.params["name"], req.params["version"]
    if version not in _model(ws, name)["versions"]:
        raise not_found(f"Model version {version} of '{name}' does not exist.")
    return ok(_info(name, version))


ROUTES = [
    Route("GET", BASE, list_),
    Route("GET", BASE + r"/(?P<version>[^/]+)", get),
]
