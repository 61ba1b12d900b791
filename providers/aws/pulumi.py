"""The aws provider's resources as pulumi-aws declarations, for `mlform export pulumi`.

For each entry in state, the live resources are read back (DescribeModel,
DescribeEndpointConfig, ListTags, ...), as `pulumi import` itself would read them, so
the declared inputs are the live ones and Pulumi's import finds nothing to change.
Only reads: nothing is created or changed.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from mlform.engine.export.declarations import (
    Declaration,
    FileAsset,
    PulumiExport,
    Ref,
)
from mlform.engine.state.model import ResourceState

from .endpoint import deployment_config
from .handler import describe_or_none
from .layout import split_uri

REQUIREMENT = "pulumi-aws>=7.51.1,<8"
FREE_FORM = frozenset({"Environment"})
"""Keys whose values are maps of the user's own names, kept as they are."""

ORDER = {t: i for i, t in enumerate(("dataset", "training_job", "model", "endpoint"))}
"""The program reads from data to serving."""
VARIANT_KEYS = frozenset({"VariantName", "ModelName", "InstanceType", "InitialInstanceCount",
                          "InitialVariantWeight"})
CAPTURE_KEYS = frozenset({"EnableCapture", "InitialSamplingPercentage", "DestinationS3Uri",
                          "CaptureOptions", "CaptureContentTypeHeader"})
NOT_EXPRESSIBLE = {
    "training_job": "a SageMaker training job is a finished run: pulumi-aws's TrainingJob "
                    "would start a new run on any change, so mlform keeps it (its artifact "
                    "is the model's model_data_url below)",
    "batch_job": "a SageMaker transform job is a one-off run, and pulumi-aws has no "
                 "resource for it; its output stays in the bucket",
    "monitor": "monitors are evaluated by `mlform watch` from the captured traffic; "
               "there is no SageMaker resource to declare",
    "retraining_policy": "retraining policies are decided by `mlform watch`; there is "
                         "no cloud resource to declare",
}


def export(provider: Any, entries: list[ResourceState]) -> PulumiExport:
    """The declarations of `entries`, read live through `provider`'s clients."""
    reader = _Reader(provider)
    declarations: list[Declaration] = []
    notes: list[str] = []
    if provider.ctx.config.get("endpoint_url"):
        notes.append(f"provider '{provider.ctx.provider_name}' talks to "
                     f"{provider.ctx.config['endpoint_url']}; the program uses AWS's own "
                     "endpoints")
    for entry in sorted(entries, key=lambda e: (ORDER.get(e.type, len(ORDER)), e.name)):
        if entry.status != "ready" or not entry.id:
            notes.append(f"{entry.type} '{entry.name}' is {entry.status} in state: apply "
                         "the stack, then export again")
            continue
        make = getattr(reader, entry.type, None)
        if make is None:
            notes.append(f"{entry.type} '{entry.name}': "
                         + NOT_EXPRESSIBLE.get(entry.type, "no pulumi-aws resource"))
            continue
        found, more = make(entry)
        declarations += found
        notes += more
    if any(e.type in ("dataset", "model") for e in entries):
        notes.append(f"bucket '{provider.clients.cfg.bucket}': the provider's configuration, "
                     "not mlform's: the objects below name it, it is not declared")
    if any(e.type == "model" for e in entries):
        notes.append("model versions: pulumi-aws has no ModelPackage resource, so each "
                     "registered version (and its gate results) stays in mlform's state; "
                     "the group and the SageMaker Model serving the current one are below")
    return PulumiExport(module="pulumi_aws", alias="aws", requirement=REQUIREMENT,
                        provider_args={"region": provider.clients.cfg.region},
                        declarations=_linked(declarations), notes=notes)


class _Reader:
    """One method per resource type: (declarations, notes) for a state entry."""

    def __init__(self, provider: Any):
        self.ctx = provider.ctx
        self.clients = provider.clients

    def dataset(self, entry: ResourceState) -> tuple[list[Declaration], list[str]]:
        from mlform.ml.datasets import content_version

        bucket, key = split_uri(entry.outputs["uri"])
        s3 = self.clients.s3
        if describe_or_none(s3.head_object, Bucket=bucket, Key=key) is None:
            return [], [f"dataset '{entry.name}': {entry.outputs['uri']} is gone: run "
                        "mlform apply, then export again"]
        notes = []
        source = str(entry.inputs.get("source", ""))
        path = self.ctx.stack_dir / source
        if not path.is_file() or content_version(path) != entry.outputs.get("version"):
            notes.append(f"dataset '{entry.name}': {source} no longer holds the version in "
                         f"state ({entry.outputs.get('version')}); `pulumi up` would upload "
                         "it: run mlform apply first")
        tags = {t["Key"]: t["Value"]
                for t in s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])}
        return [Declaration(
            name=entry.name, cls="s3.BucketObjectv2", source=entry.name,
            args={"bucket": bucket, "key": key, "source": FileAsset(source), "tags": tags},
            import_id=f"{bucket}/{key}",
            # S3 does not report which file an object came from; the key is content-addressed,
            # so the object never changes: a new version is a new key, and a new export
            ignore_changes=("source",))], notes

    def model(self, entry: ResourceState) -> tuple[list[Declaration], list[str]]:
        sm = self.clients.sagemaker
        outputs = entry.provider_outputs
        group = describe_or_none(sm.describe_model_package_group,
                                 ModelPackageGroupName=outputs["name"])
        model = describe_or_none(sm.describe_model, ModelName=outputs.get("sagemaker_model"))
        if group is None or model is None:
            return [], [f"model '{entry.name}': its SageMaker resources are gone: run "
                        "mlform apply, then export again"]
        container = {k: v for k, v in model["PrimaryContainer"].items()
                     if k in ("Image", "ModelDataUrl", "Environment", "Mode")}
        return [
            Declaration(name=f"{entry.name}-group", cls="sagemaker.ModelPackageGroup",
                        source=entry.name, import_id=group["ModelPackageGroupName"], args={
                            "model_package_group_name": group["ModelPackageGroupName"],
                            "model_package_group_description":
                                group.get("ModelPackageGroupDescription", ""),
                            "tags": self._tags(group["ModelPackageGroupArn"])}),
            Declaration(name=entry.name, cls="sagemaker.Model", source=entry.name,
                        import_id=model["ModelName"], args={
                            "name": model["ModelName"],
                            "execution_role_arn": model["ExecutionRoleArn"],
                            "primary_container": snake(container),
                            "tags": self._tags(model["ModelArn"])}),
        ], [f"model '{entry.name}': the serving code its container runs "
            f"({model['PrimaryContainer'].get('Environment', {}).get('SAGEMAKER_SUBMIT_DIRECTORY', 'in S3')}) "
            "is built by mlform and left out"]

    def endpoint(self, entry: ResourceState) -> tuple[list[Declaration], list[str]]:
        sm = self.clients.sagemaker
        outputs = entry.provider_outputs
        live = describe_or_none(sm.describe_endpoint, EndpointName=outputs["name"])
        if live is None:
            return [], [f"endpoint '{entry.name}': {outputs['name']} is gone: run mlform "
                        "apply, then export again"]
        config = sm.describe_endpoint_config(EndpointConfigName=live["EndpointConfigName"])
        body = {k: config[k] for k in ("ProductionVariants", "ShadowProductionVariants",
                                       "DataCaptureConfig") if config.get(k)}
        body["ProductionVariants"] = [{k: v for k, v in variant.items() if k in VARIANT_KEYS}
                                      for variant in body.get("ProductionVariants", [])]
        if "ShadowProductionVariants" in body:
            body["ShadowProductionVariants"] = [
                {k: v for k, v in variant.items() if k in VARIANT_KEYS}
                for variant in body["ShadowProductionVariants"]]
        if "DataCaptureConfig" in body:
            body["DataCaptureConfig"] = {k: v for k, v in body["DataCaptureConfig"].items()
                                         if k in CAPTURE_KEYS}
        config_name = f"{entry.name}-config"
        # The rollout the endpoint's next update uses, from the inputs in state: SageMaker
        # does not report it back until an update runs with it.
        rollout = deployment_config(_endpoint_spec(entry.inputs).rollout,
                                    list(outputs.get("alarms") or []))
        alarms, notes = self._alarms(entry, list(outputs.get("alarms") or []))
        declared = {d.args["name"]: d.name for d in alarms}
        rollback = rollout.get("AutoRollbackConfiguration", {}).get("Alarms", [])
        for alarm in rollback:  # the alarms as references: Pulumi makes them first
            if alarm["AlarmName"] in declared:
                alarm["AlarmName"] = Ref(declared[alarm["AlarmName"]], "name")
        return [
            *alarms,
            Declaration(name=config_name, cls="sagemaker.EndpointConfiguration",
                        source=entry.name, import_id=config["EndpointConfigName"], args={
                            "name": config["EndpointConfigName"], **snake(body),
                            "tags": self._tags(config["EndpointConfigArn"])}),
            Declaration(name=entry.name, cls="sagemaker.Endpoint", source=entry.name,
                        import_id=live["EndpointName"], args={
                            "name": live["EndpointName"],
                            "endpoint_config_name": Ref(config_name, "name"),
                            "deployment_config": snake(rollout),
                            "tags": self._tags(live["EndpointArn"])},
                        # SageMaker reports a deployment config only once an update used it
                        ignore_changes=("deployment_config",)),
        ], notes

    def _alarms(self, entry: ResourceState, names: list[str]
                ) -> tuple[list[Declaration], list[str]]:
        """The CloudWatch alarms the endpoint's rollouts roll back on."""
        if not names:
            return [], []
        cw = self.clients.cloudwatch
        found = {a["AlarmName"]: a for page in cw.get_paginator("describe_alarms").paginate(
            AlarmNames=names) for a in page.get("MetricAlarms", [])}
        missing = [n for n in names if n not in found]
        declarations = []
        for i, name in enumerate(n for n in names if n in found):
            alarm = found[name]
            args: dict[str, Any] = {"name": name}
            for key in ("AlarmDescription", "ComparisonOperator", "EvaluationPeriods",
                        "Threshold", "TreatMissingData", "MetricName", "Namespace", "Period",
                        "Statistic", "ExtendedStatistic"):
                if alarm.get(key) is not None:
                    args[_snake_key(key)] = alarm[key]
            if alarm.get("Dimensions"):
                args["dimensions"] = _dimensions(alarm["Dimensions"])
            if alarm.get("Metrics"):
                args["metric_queries"] = [_query(q) for q in alarm["Metrics"]]
            tags = cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags", [])
            args["tags"] = {t["Key"]: t["Value"] for t in tags}
            declarations.append(Declaration(
                name=f"{entry.name}-alarm-{i + 1}", cls="cloudwatch.MetricAlarm",
                source=entry.name, import_id=name, args=args))
        notes = [f"endpoint '{entry.name}': alarm {n} is gone; the next mlform apply "
                 "makes it again" for n in missing]
        return declarations, notes

    def _tags(self, arn: str) -> dict[str, str]:
        listed = self.clients.sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
        return {t["Key"]: t["Value"] for t in listed}


def _endpoint_spec(inputs: dict[str, Any]) -> Any:
    from mlform.engine.spec.models import RESOURCE_TYPES
    from mlform.engine.values import reveal

    return RESOURCE_TYPES["endpoint"].model_validate({**reveal(inputs), "type": "endpoint"})


def _linked(declarations: list[Declaration]) -> list[Declaration]:
    """Endpoint configs refer to the declared SageMaker Models by reference, so Pulumi
    knows the order and a renamed model flows into the config."""
    models = {d.args["name"]: d.name for d in declarations if d.cls == "sagemaker.Model"}
    linked = []
    for d in declarations:
        if d.cls == "sagemaker.EndpointConfiguration":
            args = dict(d.args)
            for key in ("production_variants", "shadow_production_variants"):
                if key in args:
                    args[key] = [{**v, "model_name": Ref(models[v["model_name"]], "name")}
                                 if v.get("model_name") in models else v for v in args[key]]
            d = replace(d, args=args)
        linked.append(d)
    return linked


def _dimensions(dims: list[dict[str, str]]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in dims}


def _query(query: dict[str, Any]) -> dict[str, Any]:
    """A metric math query of DescribeAlarms as pulumi-aws's `metric_queries` item."""
    out: dict[str, Any] = {_snake_key(k): query[k] for k in
                           ("Id", "Expression", "Label", "ReturnData") if k in query}
    stat = query.get("MetricStat")
    if stat:
        metric = stat.get("Metric", {})
        out["metric"] = {"namespace": metric.get("Namespace"),
                         "metric_name": metric.get("MetricName"),
                         "dimensions": _dimensions(metric.get("Dimensions", [])),
                         "period": stat.get("Period"), "stat": stat.get("Stat")}
    return out


def snake(value: Any) -> Any:
    """A boto3 structure in pulumi-aws's snake_case (`ModelDataUrl` -> `model_data_url`);
    maps of the user's own names (`Environment`) are kept as they are."""
    if isinstance(value, dict):
        return {_snake_key(k): (v if k in FREE_FORM else snake(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


def _snake_key(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
