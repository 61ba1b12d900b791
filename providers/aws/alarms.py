"""CloudWatch alarms that guard an endpoint's rollouts (SageMaker rolls back on them).

From the stack's `rollback`: `max_error_rate` becomes an alarm on the share of
invocations answered with a 5xx (Invocation5XXErrors / Invocations, metric math);
`max_p99_latency_ms` an alarm on the p99 of ModelLatency (reported in microseconds).
One alarm per variant and condition, named `<endpoint>-<variant>-<condition>`.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "AWS/SageMaker"
PERIOD = 60


def _stat(metric_id: str, name: str, dims: list[dict[str, str]], stat: str) -> dict[str, Any]:
    return {"Id": metric_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dims},
        "Period": PERIOD, "Stat": stat}}


def desired_alarms(endpoint: str, variants: list[str], rollback: Any
                   ) -> dict[str, dict[str, Any]]:
    """Alarm name -> PutMetricAlarm arguments (without Tags)."""
    alarms: dict[str, dict[str, Any]] = {}
    for variant in variants:
        dims = [{"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant}]
        common = {"EvaluationPeriods": 1, "TreatMissingData": "notBreaching",
                  "ComparisonOperator": "GreaterThanThreshold"}
        if rollback.max_error_rate is not None:
            name = f"{endpoint}-{variant}-error-rate"
            alarms[name] = {
                **common, "AlarmName": name, "Threshold": float(rollback.max_error_rate),
                "AlarmDescription": f"mlform: 5xx share of {endpoint}/{variant} above "
                                    f"{rollback.max_error_rate}",
                "Metrics": [
                    _stat("errors", "Invocation5XXErrors", dims, "Sum"),
                    _stat("invocations", "Invocations", dims, "Sum"),
                    {"Id": "rate", "Expression": "errors / invocations",
                     "Label": "5xx error rate", "ReturnData": True}]}
        if rollback.max_p99_latency_ms is not None:
            name = f"{endpoint}-{variant}-p99-latency"
            alarms[name] = {
                **common, "AlarmName": name, "Namespace": NAMESPACE,
                "MetricName": "ModelLatency", "Dimensions": dims, "Period": PERIOD,
                "ExtendedStatistic": "p99",
                "Threshold": float(rollback.max_p99_latency_ms) * 1000.0,
                "AlarmDescription": f"mlform: p99 model latency of {endpoint}/{variant} "
                                    f"above {rollback.max_p99_latency_ms} ms"}
    return alarms


def sync_alarms(cloudwatch: Any, desired: dict[str, dict[str, Any]],
                tags: list[dict[str, str]]) -> list[str]:
    """Create or update the desired alarms; returns their names."""
    for args in desired.values():
        cloudwatch.put_metric_alarm(**args, Tags=tags)
    return sorted(desired)


def owned_alarms(cloudwatch: Any, prefix: str, owner: dict[str, str]) -> list[str]:
    """Names of the alarms under `prefix` whose tags include every pair of `owner`."""
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix)
    names = []
    for alarm in (a for page in pages for a in page.get("MetricAlarms", [])):
        tags = cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags", [])
        if owner.items() <= {t["Key"]: t["Value"] for t in tags}.items():
            names.append(alarm["AlarmName"])
    return names


def delete_alarms(cloudwatch: Any, names: list[str]) -> None:
    for start in range(0, len(names), 100):  # DeleteAlarms takes at most 100 names
        cloudwatch.delete_alarms(AlarmNames=names[start:start + 100])
