"""Google Cloud failures in words a user can act on: which permission on which resource,
which quota, what to do next; and which failures are worth another try."""

from __future__ import annotations

import re
from typing import Any

RETRIED_CODES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses retried with backoff: throttling and transient server errors."""

PERMISSIONS = {
    # method of the GAPIC client -> the IAM permission it needs
    "create_custom_job": "aiplatform.customJobs.create",
    "get_custom_job": "aiplatform.customJobs.get",
    "list_custom_jobs": "aiplatform.customJobs.list",
    "cancel_custom_job": "aiplatform.customJobs.cancel",
    "delete_custom_job": "aiplatform.customJobs.delete",
    "upload_model": "aiplatform.models.upload",
    "get_model": "aiplatform.models.get",
    "list_models": "aiplatform.models.list",
    "list_model_versions": "aiplatform.models.list",
    "merge_version_aliases": "aiplatform.models.update",
    "update_model": "aiplatform.models.update",
    "delete_model": "aiplatform.models.delete",
    "delete_model_version": "aiplatform.models.delete",
    "create_endpoint": "aiplatform.endpoints.create",
    "get_endpoint": "aiplatform.endpoints.get",
    "list_endpoints": "aiplatform.endpoints.list",
    "update_endpoint": "aiplatform.endpoints.update",
    "delete_endpoint": "aiplatform.endpoints.delete",
    "deploy_model": "aiplatform.endpoints.deploy",
    "undeploy_model": "aiplatform.endpoints.undeploy",
    "predict": "aiplatform.endpoints.predict",
    "create_batch_prediction_job": "aiplatform.batchPredictionJobs.create",
    "get_batch_prediction_job": "aiplatform.batchPredictionJobs.get",
    "list_batch_prediction_jobs": "aiplatform.batchPredictionJobs.list",
    "cancel_batch_prediction_job": "aiplatform.batchPredictionJobs.cancel",
    "delete_batch_prediction_job": "aiplatform.batchPredictionJobs.delete",
    "list_time_series": "monitoring.timeSeries.list",
    "upload": "storage.objects.create",
    "download": "storage.objects.get",
    "exists": "storage.objects.get",
    "list_blobs": "storage.objects.list",
    "delete": "storage.objects.delete",
}


class GcpError(Exception):
    """A failure already explained for the user; its message is shown as is."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a Google API failure, or None for anything else."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)  # google.resumable_media, requests
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_google_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("google.", "requests.", "urllib3."))


def is_not_found(exc: BaseException) -> bool:
    return is_google_error(exc) and status_of(exc) == 404


def is_retried(exc: BaseException) -> bool:
    """Throttling, 5xx and a dropped connection: worth another try after a pause."""
    if status_of(exc) in RETRIED_CODES:
        return True
    return type(exc).__name__ in ("ConnectionError", "ChunkedEncodingError",
                                  "ReadTimeout", "ConnectTimeout") and is_google_error(exc)


def permission_for(method: str) -> str:
    return PERMISSIONS.get(method, f"the permission of '{method}'")


def explain(exc: BaseException, method: str = "", resource: str = "") -> str:
    """One message for any Google Cloud failure, naming what to do next."""
    name = type(exc).__name__
    if name in ("DefaultCredentialsError", "RefreshError"):
        return no_credentials(str(exc))
    status = status_of(exc)
    message = str(getattr(exc, "message", "") or exc).strip()
    # the REST transport puts the request first ("POST http://...: text"): the text says it
    message = re.sub(r"^[A-Z]+ https?://\S+: ", "", message)
    where = f" on '{resource}'" if resource else ""
    what = f"'{method}'" if method else "the call"
    if status == 403:
        permission, target = _denied(exc, method, message)
        on = f" on '{target}'" if target else where
        return (f"permission denied: the identity running mlform lacks '{permission}'{on} "
                f"({message}); grant it a role holding this permission (docs/providers/gcp.md "
                "lists the roles the provider needs)")
    if status == 429 and _is_quota(exc, message):
        quota = quota_name(exc, message)
        return (f"quota exceeded calling {what}{where}: quota '{quota}' ({message}); request "
                "an increase (console: IAM & Admin > Quotas, service Vertex AI API, the quota "
                "named above) or choose another machine type with "
                "provider_options.gcp.machine_type")
    if status in RETRIED_CODES:
        return (f"Google Cloud kept failing {what}{where} after every retry: {status} "
                f"{message}; raise `max_attempts` in the provider config or lower --parallelism")
    if name in ("ConnectionError", "ConnectTimeout"):
        return f"cannot reach Google Cloud: {exc}; check the region and `api_endpoint`"
    if status:
        return f"{what}{where} failed: {status} {message}"
    return f"{what}{where} failed: {name}: {message}"


def no_credentials(detail: str = "") -> str:
    return ("no Google Cloud credentials found: run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or run where "
            "a service account is attached" + (f" ({detail})" if detail else ""))


def _details(exc: BaseException) -> list[Any]:
    details = getattr(exc, "details", None)
    return list(details) if isinstance(details, list | tuple) else []


def _field(detail: Any, name: str) -> Any:
    if isinstance(detail, dict):
        return detail.get(name)
    return getattr(detail, name, None)


def _denied(exc: BaseException, method: str, message: str) -> tuple[str, str]:
    """(permission, resource) of a 403: from its ErrorInfo when the server sent one, else
    from the message ("Permission 'x' denied on resource 'y'"), else from the method."""
    for detail in _details(exc):
        metadata = _field(detail, "metadata") or {}
        if isinstance(metadata, dict) and metadata.get("permission"):
            return str(metadata["permission"]), str(metadata.get("resource", ""))
    found = re.search(r"[Pp]ermission '([^']+)' denied on resource '([^']+)'", message)
    if found:
        return found.group(1), found.group(2)
    return permission_for(method), ""


def _is_quota(exc: BaseException, message: str) -> bool:
    return "quota" in message.lower() or any(
        _field(d, "violations") for d in _details(exc))


def quota_name(exc: BaseException, message: str) -> str:
    """The quota a RESOURCE_EXHAUSTED names: a QuotaFailure violation, an ErrorInfo's
    quota_metric, or the metric quoted in the message."""
    for detail in _details(exc):
        for violation in _field(detail, "violations") or []:
            subject = _field(violation, "subject") or _field(violation, "quota_metric")
            if subject:
                return str(subject)
        metadata = _field(detail, "metadata") or {}
        if isinstance(metadata, dict):
            for key in ("quota_metric", "quota_limit", "quota_id"):
                if metadata.get(key):
                    return str(metadata[key])
    for pattern in (r"quota metric '([^']+)'", r"[Qq]uota '([^']+)'",
                    r"[Qq]uota exceeded for (?:quota metric )?'?([\w./-]+)'?"):
        found = re.search(pattern, message)
        if found:
            return found.group(1)
    return "named in the message"
