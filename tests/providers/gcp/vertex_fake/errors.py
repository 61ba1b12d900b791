"""The error replies of the fake, shaped as Google APIs shape them over REST.

`{"error": {"code": <http>, "message": ..., "status": <canonical name>, "details": [...]}}` is what
`google.api_core.exceptions.from_http_response` turns into `NotFound`, `AlreadyExists`, ... ;
operations carry the same errors as `google.rpc.Status` with the gRPC code instead.
"""

from __future__ import annotations

from typing import Any

# canonical status -> (http code, grpc code)
CODES: dict[str, tuple[int, int]] = {
    "CANCELLED": (499, 1),
    "INVALID_ARGUMENT": (400, 3),
    "DEADLINE_EXCEEDED": (504, 4),
    "NOT_FOUND": (404, 5),
    "ALREADY_EXISTS": (409, 6),
    "PERMISSION_DENIED": (403, 7),
    "RESOURCE_EXHAUSTED": (429, 8),
    "FAILED_PRECONDITION": (400, 9),
    "ABORTED": (409, 10),
    "UNIMPLEMENTED": (501, 12),
    "INTERNAL": (500, 13),
    "UNAVAILABLE": (503, 14),
}
BY_HTTP = {"400": "INVALID_ARGUMENT", "403": "PERMISSION_DENIED", "404": "NOT_FOUND",
           "409": "ALREADY_EXISTS", "429": "RESOURCE_EXHAUSTED", "500": "INTERNAL",
           "501": "UNIMPLEMENTED", "503": "UNAVAILABLE", "504": "DEADLINE_EXCEEDED"}


class ApiError(Exception):
    """An error reply: raised anywhere in a handler, rendered by the HTTP layer."""

    def __init__(self, status: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []

    @property
    def http_code(self) -> int:
        return CODES[self.status][0]

    @property
    def grpc_code(self) -> int:
        return CODES[self.status][1]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.http_code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def rpc_status(self) -> dict[str, Any]:
        """The error as a `google.rpc.Status` (what an operation or a job's `error` holds)."""
        return {"code": self.grpc_code, "message": self.message}


def not_found(name: str) -> ApiError:
    return ApiError("NOT_FOUND", f'The resource "{name}" was not found.')


def permission_denied(permission: str, resource: str) -> ApiError:
    """What the real service answers when the caller lacks an IAM permission (or the
    resource does not exist in a project it can see)."""
    full = f"//aiplatform.googleapis.com/{resource}"
    return ApiError(
        "PERMISSION_DENIED",
        f"Permission '{permission}' denied on resource '{full}' (or it may not exist).",
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
          "domain": "aiplatform.googleapis.com",
          "metadata": {"permission": permission, "resource": resource}}])


def quota_exceeded(metric: str) -> ApiError:
    """A quota refusal naming the quota metric, as the real service does."""
    return ApiError(
        "RESOURCE_EXHAUSTED",
        f"The following quota metrics exceed quota limits: {metric}",
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
          "domain": "aiplatform.googleapis.com", "metadata": {"quota_metric": metric}}])


def unavailable() -> ApiError:
    return ApiError("UNAVAILABLE", "The service is currently unavailable.")
