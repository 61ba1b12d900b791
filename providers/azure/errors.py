"""Azure failures in words a user can act on: which role on which scope, which quota,
what to do next; and which failures are worth another try (and after how long)."""

from __future__ import annotations

import re
from typing import Any

RETRIED_CODES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses retried: throttling and transient server errors."""

WORKSPACE_ROLE = "AzureML Data Scientist"
BLOB_ROLE = "Storage Blob Data Contributor"
METRICS_ROLE = "Monitoring Reader"
ENDPOINT_ROLE = "AzureML Data Scientist"

ACTIONS = {
    # what the provider was doing -> (the role that allows it, the Azure action it needs)
    "jobs": (WORKSPACE_ROLE, "Microsoft.MachineLearningServices/workspaces/jobs/write"),
    "models": (WORKSPACE_ROLE, "Microsoft.MachineLearningServices/workspaces/models/write"),
    "data": (WORKSPACE_ROLE, "Microsoft.MachineLearningServices/workspaces/data/write"),
    "code": (WORKSPACE_ROLE, "Microsoft.MachineLearningServices/workspaces/codes/write"),
    "environments": (WORKSPACE_ROLE,
                     "Microsoft.MachineLearningServices/workspaces/environments/read"),
    "endpoints": (ENDPOINT_ROLE,
                  "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write"),
    "deployments": (ENDPOINT_ROLE, "Microsoft.MachineLearningServices/workspaces/"
                                   "onlineEndpoints/deployments/write"),
    "score": (ENDPOINT_ROLE, "Microsoft.MachineLearningServices/workspaces/"
                             "onlineEndpoints/score/action"),
    "metrics": (METRICS_ROLE, "Microsoft.Insights/metrics/read"),
    "blob": (BLOB_ROLE, "Microsoft.Storage/storageAccounts/blobServices/containers/"
                        "blobs/write"),
}


class AzureError(Exception):
    """A failure already explained for the user; its message is shown as is."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an Azure failure, or None for anything else."""
    for holder in (exc, getattr(exc, "inner_exception", None), exc.__cause__):
        if holder is None:
            continue
        code = getattr(holder, "status_code", None)
        if isinstance(code, int):
            return code
        response = getattr(holder, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds the service asked to wait (Retry-After), or None."""
    for holder in (exc, getattr(exc, "inner_exception", None), exc.__cause__):
        response = getattr(holder, "response", None)
        headers = getattr(response, "headers", None)
        if headers is None:
            continue
        value = headers.get("Retry-After") or headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None
    return None


def is_azure_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("azure.", "requests.", "urllib3."))


def is_not_found(exc: BaseException) -> bool:
    if type(exc).__name__ == "ResourceNotFoundError":
        return True
    return is_azure_error(exc) and status_of(exc) == 404


def is_retried(exc: BaseException) -> bool:
    """Throttling, 5xx and a dropped connection: worth another try after a pause."""
    if status_of(exc) in RETRIED_CODES:
        return True
    return type(exc).__name__ in ("ServiceRequestError", "ServiceResponseError",
                                  "ConnectionError", "ChunkedEncodingError",
                                  "ReadTimeout", "ConnectTimeout") and is_azure_error(exc)


def error_code(exc: BaseException) -> str:
    """The service's error code (`AuthorizationFailed`, `QuotaExceeded`, ...), or ''."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    found = re.search(r"\(([A-Za-z]+)\)", str(exc))
    return found.group(1) if found else ""


def message_of(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:500]


def explain(exc: BaseException, area: str = "", resource: str = "", scope: str = "") -> str:
    """One message for any Azure failure, naming what to do next. `area` is what was
    being done (a key of ACTIONS), `scope` the Azure resource id it concerned."""
    name = type(exc).__name__
    if name in ("ClientAuthenticationError", "CredentialUnavailableError"):
        return no_credentials(message_of(exc))
    status = status_of(exc)
    code = error_code(exc)
    message = message_of(exc)
    where = f" for '{resource}'" if resource else ""
    what = f"the {area} call" if area else "the call"
    if status == 401:
        return no_credentials(f"the service refused the token: {message}")
    if status == 403 or code in ("AuthorizationFailed", "AuthorizationPermissionMismatch"):
        role, action = ACTIONS.get(area, (WORKSPACE_ROLE, "the action named above"))
        named = re.search(r"perform action '([^']+)'", message)  # the service's own words
        action = named.group(1) if named else action
        on = _scope_in(message) or scope or "the workspace"
        return (f"permission denied{where}: the identity running mlform may not perform "
                f"'{action}' on '{on}' ({message}); assign it the role '{role}' on that scope "
                "(az role assignment create --assignee <identity> --role "
                f"\"{role}\" --scope {on}); docs/providers/azure.md lists the roles")
    if _is_quota(code, message):
        quota = quota_name(message)
        return (f"quota exceeded{where}: {quota} ({message}); request an increase (Azure "
                "portal: Azure Machine Learning > Quotas, the quota named above) or choose a "
                "smaller VM size with provider_options.azure.instance_type")
    if status in RETRIED_CODES:
        return (f"Azure kept failing {what}{where} after every retry: {status} {message}; "
                "raise `max_attempts` in the provider config or lower --parallelism")
    if name in ("ServiceRequestError", "ConnectionError", "ConnectTimeout"):
        return f"cannot reach Azure: {message}; check `cloud:` endpoints and the network"
    if status:
        return f"{what}{where} failed: {status} {code + ': ' if code else ''}{message}"
    return f"{what}{where} failed: {name}: {message}"


def no_credentials(detail: str = "") -> str:
    return ("no Azure credentials found: run `az login`, or set AZURE_CLIENT_ID, "
            "AZURE_TENANT_ID and AZURE_CLIENT_SECRET for a service principal, or run where a "
            "managed identity is attached (the provider's `credential:` setting chooses "
            "which)" + (f" ({detail})" if detail else ""))


def _scope_in(message: str) -> str:
    found = re.search(r"over scope '([^']+)'", message) or \
        re.search(r"scope '(/subscriptions/[^']+)'", message)
    return found.group(1) if found else ""


def _is_quota(code: str, message: str) -> bool:
    return "quota" in code.lower() or "quota" in message.lower()


def quota_name(message: str) -> str:
    """The quota a quota failure names: `Standard DSv2 Family vCPUs`, or as quoted."""
    for pattern in (r"[Qq]uota '([^']+)'",
                    r"((?:Standard|Total Regional|Low-priority|Dedicated)[\w -]*?vCPUs)",
                    r"((?:[Ee]ndpoints?|[Dd]eployments?|[Ii]nstances?) (?:per \w+ )?quota)"):
        found = re.search(pattern, message)
        if found:
            return f"quota '{found.group(1).strip()}'"
    return "the quota named in the message"


def describe(exc: Any) -> str:
    """Short form for logs and progress."""
    return f"{type(exc).__name__}: {message_of(exc)}"
