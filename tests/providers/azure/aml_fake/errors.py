"""The fake's error replies, shaped as Azure Resource Manager and the Azure ML service shape
them: `{"error": {"code": ..., "message": ...}}`, which azure-core turns into
`HttpResponseError` (404 -> `ResourceNotFoundError`, 409 -> `ResourceExistsError`, ...)
with `.error.code` set."""

from __future__ import annotations

from typing import Any

# What fail_next(operation, status) answers with when no message is given.
DEFAULT_CODES = {400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed",
                 404: "ResourceNotFound", 409: "Conflict", 429: "TooManyRequests",
                 500: "InternalServerError", 503: "ServiceUnavailable"}


class AzureError(Exception):
    """An error reply: raised anywhere in a handler, rendered by the HTTP layer. `retry_after`
    (seconds) adds a Retry-After header, as throttling and 503 replies carry."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        headers = {"x-ms-error-code": self.code}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def not_found(kind: str, name: str) -> AzureError:
    return AzureError(404, "UserError", f"{kind} {name} not found.")


def bad_request(message: str) -> AzureError:
    return AzureError(400, "UserError", message)


def conflict(message: str) -> AzureError:
    return AzureError(409, "Conflict", message)


def authorization_failed(action: str, scope: str) -> AzureError:
    """ARM's refusal when the caller's role lacks an action, naming the action and scope."""
    return AzureError(
        403, "AuthorizationFailed",
        "The client '00000000-0000-0000-0000-0000000000aa' with object id "
        "'00000000-0000-0000-0000-0000000000aa' does not have authorization to perform action "
        f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials.")


def throttled(operation: str) -> AzureError:
    return AzureError(429, "TooManyRequests",
                      f"The request for {operation} was throttled: too many requests in this "
                      "subscription for the Microsoft.MachineLearningServices resource "
                      "provider. Retry after the period in the Retry-After header.",
                      retry_after=1)


def quota_exceeded(vm_family: str, region: str) -> AzureError:
    return AzureError(400, "QuotaExceeded",
                      f"Not enough quota available for {vm_family} in SubscriptionId "
                      f"00000000-0000-0000-0000-000000000000 in region {region}. Current usage/"
                      "limit: 0/0. Additional needed: 4. Please request a quota increase.")
