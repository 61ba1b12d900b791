"""The resources in the account tagged as this stack's, for orphan reports.

Each is reported as (mlform type, the id state would hold for it), so the engine can
tell orphans from managed resources: endpoints, training jobs and transform jobs by
name, a model by its newest package version's ARN, a dataset by its newest version's
uri. The Resource Groups Tagging API does not cover every SageMaker type, so each
service is listed and each entry's tags read. What a resource owns beside its main
object (SageMaker Models, endpoint configs, alarms, older versions) goes with it on
delete and is not listed separately.
"""

from __future__ import annotations

from typing import Any

from .layout import Layout
from .naming import STACK_TAG, sagemaker_name, tag_dict

# list operation, result key, name key, arn key, the mlform type whose id is that name
SAGEMAKER_LISTS = (
    ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn", "endpoint"),
    ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobArn",
     "training_job"),
    ("list_transform_jobs", "TransformJobSummaries", "TransformJobName", "TransformJobArn",
     "batch_job"),
    ("list_model_package_groups", "ModelPackageGroupSummaryList", "ModelPackageGroupName",
     "ModelPackageGroupArn", "model"),
)


def list_owned(stack: str, clients: Any) -> list[tuple[str, str]]:
    owned: list[tuple[str, str]] = []
    sm = clients.sagemaker
    for operation, key, name_key, arn_key, rtype in SAGEMAKER_LISTS:
        for page in sm.get_paginator(operation).paginate(NameContains=sagemaker_name(stack)):
            for item in page.get(key, []):
                tags = tag_dict(sm.list_tags(ResourceArn=item[arn_key]).get("Tags", []))
                if tags.get(STACK_TAG) != stack:
                    continue
                if rtype == "model":
                    newest = _newest_version(sm, item[name_key])
                    if newest:
                        owned.append((rtype, newest))
                else:
                    owned.append((rtype, item[name_key]))
    owned.extend(("dataset", uri) for uri in _newest_datasets(clients, stack))
    return owned


def _newest_version(sm: Any, group: str) -> str | None:
    pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
    versions = [p for page in pages for p in page.get("ModelPackageSummaryList", [])]
    newest = max(versions, key=lambda p: p.get("ModelPackageVersion") or 0, default=None)
    return newest["ModelPackageArn"] if newest else None


def _newest_datasets(clients: Any, stack: str) -> list[str]:
    layout = Layout(clients.cfg.bucket, clients.cfg.prefix, stack)
    prefix = layout.key("datasets") + "/"
    newest: dict[str, dict[str, Any]] = {}
    for page in clients.s3.get_paginator("list_objects_v2").paginate(
            Bucket=clients.cfg.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):].split("/", 1)[0]
            if name not in newest or obj["LastModified"] > newest[name]["LastModified"]:
                newest[name] = obj
    return [layout.uri(obj["Key"]) for obj in newest.values()]
