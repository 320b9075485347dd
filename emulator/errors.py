"""Errors in the formats the real services answer with.

Databricks REST: ``{"error_code", "message", "details"}``; the SDK maps ``error_code`` first
(databricks/sdk/errors/platform.py ERROR_CODE_MAPPING), then the HTTP status.
SCIM: ``{"schemas", "detail", "status", "scimType"}`` (RFC 7644 3.12); the SDK turns it into
``error_code = "SCIM_<status>"`` and maps by status.
OAuth token endpoint: ``{"error", "error_description"}`` (RFC 6749 5.2).
Braintrust API: ``{"Code", "Message"}``.
"""

from __future__ import annotations

from typing import Any

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ApiError(Exception):
    """A Databricks REST error: raised by handlers, rendered by the server."""

    def __init__(self, status: int, error_code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message, "details": []}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message)


def invalid_parameter(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def invalid_state(message: str) -> ApiError:
    return ApiError(400, "INVALID_STATE", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def already_exists(message: str) -> ApiError:
    return ApiError(409, "RESOURCE_ALREADY_EXISTS", message)


def conflict(message: str) -> ApiError:
    # An update during a rollout: 409 with RESOURCE_CONFLICT, which the SDK maps by status to
    # ResourceConflict (the code itself is not in ERROR_CODE_MAPPING).
    return ApiError(409, "RESOURCE_CONFLICT", message)


def permission_denied(message: str) -> ApiError:
    return ApiError(403, "PERMISSION_DENIED", message)


def unauthenticated(message: str) -> ApiError:
    # 401 maps to databricks.sdk.errors.Unauthenticated by status.
    return ApiError(401, "UNAUTHENTICATED", message)


# Default error_code per status for injected faults.
FAULT_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST", 409: "RESOURCE_CONFLICT", 429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED", 503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ScimError(ApiError):
    """A SCIM error body; ``scim_type`` as RFC 7644 names it (uniqueness, invalidValue, ...)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(status, f"SCIM_{status}", detail)
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemas": [SCIM_ERROR_SCHEMA], "detail": self.message,
                               "status": str(self.status)}
        if self.scim_type:
            out["scimType"] = self.scim_type
        return out


class OAuthError(ApiError):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status, error, description)

    def body(self) -> dict[str, Any]:
        return {"error": self.error_code, "error_description": self.message}


class BraintrustError(ApiError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)

    def body(self) -> dict[str, Any]:
        return {"Code": self.error_code, "Message": self.message}
