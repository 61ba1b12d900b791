"""AWS failures in words a user can act on: which permission, which quota, what to do."""

from __future__ import annotations

S3_OPERATIONS = frozenset({
    "PutObject", "GetObject", "HeadObject", "DeleteObject", "CopyObject", "ListObjectsV2",
    "GetObjectTagging", "HeadBucket", "DeleteObjects",
})
CLOUDWATCH_OPERATIONS = frozenset({
    "PutMetricAlarm", "DeleteAlarms", "DescribeAlarms", "PutMetricData",
    "ListTagsForResource",
})
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "NoSuchKey", "404", "NotFound",
                             "ResourceNotFoundException"})
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException",
                                 "UnauthorizedOperation", "AuthorizationError"})


class AwsError(Exception):
    """A failure already explained for the user; its message is shown as is."""


def service_of(operation: str) -> str:
    if operation in S3_OPERATIONS:
        return "s3"
    if operation in CLOUDWATCH_OPERATIONS:
        return "cloudwatch"
    return "sagemaker"


def is_not_found(exc: BaseException) -> bool:
    """True for the ways SageMaker and S3 say that something does not exist."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    error = response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in NOT_FOUND_CODES:
        return True
    # SageMaker answers a describe of a missing resource with a ValidationException.
    lowered = message.lower()
    return code == "ValidationException" and any(
        phrase in lowered for phrase in ("could not find", "not found", "does not exist"))


def explain(exc: BaseException, resource: str = "") -> str:
    """One message for any boto3/botocore failure, naming what to do next."""
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ("no AWS credentials found: set AWS_PROFILE (after `aws configure` or "
                "`aws sso login`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "
                "where an instance or task role is attached")
    if name == "EndpointConnectionError":
        return f"cannot reach AWS: {exc}; check the region and `endpoint_url`"
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return str(exc)
    error = response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    operation = getattr(exc, "operation_name", "") or "the call"
    action = f"{service_of(operation)}:{operation}"
    where = f" on '{resource}'" if resource else ""
    if code in ACCESS_DENIED_CODES:
        return (f"access denied: the identity running mlform may not call '{action}'{where} "
                f"({message}); grant it this action (docs/providers/aws.md lists every "
                "action the provider uses)")
    if code == "ResourceLimitExceeded":
        return (f"quota exceeded calling '{action}'{where}: {message}; request an increase "
                "in Service Quotas (service 'Amazon SageMaker', the quota named above) or "
                "choose another instance type with provider_options.aws.instance_type")
    if code in ("ThrottlingException", "Throttling", "SlowDown"):
        return (f"AWS kept throttling '{action}'{where} after every retry: {message}; "
                "raise `max_attempts` in the provider config or lower --parallelism")
    return f"'{action}'{where} failed: {code}: {message}"
