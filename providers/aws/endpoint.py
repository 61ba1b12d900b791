"""Endpoints: immutable endpoint configs named by their digest, rolled out blue/green.

A config holds the variants' models, instance types and data capture; weights are
not part of its digest, so a weight-only change is an UpdateEndpointWeightsAndCapacities
call. Any other change creates `<endpoint>-<digest>` and moves the endpoint onto it
with UpdateEndpoint, using a DeploymentConfig built from the stack's `rollout` and
CloudWatch alarms built from its `rollback`. The old config is deleted only once the
endpoint is seen InService on the new one; a rollback or a failure keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    Failure,
    InvokeRequest,
    InvokeResponse,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
)
from mlform.ml.experiments.measure import kept_verdict

from . import alarms
from .compute import instance_type
from .config import seconds
from .errors import AwsError
from .handler import Handler, describe_or_none
from .naming import RESOURCE_TAG, STACK_TAG, fingerprint, sagemaker_name, tag_dict

SETTLED = {"InService", "Failed", "OutOfService"}
UNHEALTHY = frozenset({"Failed", "OutOfService"})
MAX_WAIT_INTERVAL = 3600


class EndpointHandler(Handler):
    rtype = "endpoint"

    def check(self, req: CheckRequest) -> CheckResponse:
        from mlform.engine.input_checks import plain_model_problems

        problems = super().check(req).problems + plain_model_problems(
            req.inputs.get("variants"), lambda model: model.startswith("arn:"))
        if req.inputs.get("feature_view") is not None:
            problems.append(Problem(("feature_view",), "feature_view lookups are served by "
                                    "the local provider only",
                                    help="send full feature rows to SageMaker, or serve this "
                                         "endpoint with the local provider"))
        return CheckResponse(problems=problems + _experiment_problems(req.inputs))

    def endpoint_name(self, resource: str) -> str:
        return self.name(resource)

    # --- the desired config -------------------------------------------------------

    def _model_name(self, package_arn: str) -> str:
        package = describe_or_none(self.clients.sagemaker.describe_model_package,
                                   ModelPackageName=package_arn)
        if package is None:
            raise AwsError(f"model version '{package_arn}' not found; an endpoint on aws "
                           "serves a model resource's `uri`")
        from .model import SAGEMAKER_MODEL

        return package["CustomerMetadataProperties"][SAGEMAKER_MODEL]

    def _config(self, resource: str, spec: Any) -> tuple[str, dict[str, Any]]:
        """(config name, CreateEndpointConfig arguments but the name and tags)."""
        if spec.feature_view:
            raise AwsError(f"endpoint '{resource}': feature_view lookups are served by the "
                           "local provider only; send full feature rows to SageMaker")
        options = self.options(spec)
        itype = instance_type(self.cfg, "inference", spec.compute.model_dump(), options)
        production, shadow = [], []
        for key, variant in spec.variants.items():
            entry = {"VariantName": sagemaker_name(key), "ModelName":
                     self._model_name(str(variant.model)), "InstanceType": itype,
                     "InitialInstanceCount": int(spec.compute.instances),
                     "InitialVariantWeight": float(variant.weight)}
            (shadow if variant.shadow else production).append(entry)
        body: dict[str, Any] = {"ProductionVariants": production}
        if shadow:
            body["ShadowProductionVariants"] = shadow
        if spec.logging.sample_rate > 0:
            body["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": max(1, round(spec.logging.sample_rate * 100)),
                "DestinationS3Uri": self.layout.capture_uri(resource),
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}
        unweighted = {k: [{**v, "InitialVariantWeight": None} for v in vs]
                      if isinstance(vs, list) else vs for k, vs in body.items()}
        return sagemaker_name(self.endpoint_name(resource), fingerprint(unweighted, 8)), body

    def _ensure_config(self, name: str, body: dict[str, Any], resource: str, spec: Any) -> None:
        sm = self.clients.sagemaker
        if describe_or_none(sm.describe_endpoint_config, EndpointConfigName=name) is None:
            sm.create_endpoint_config(EndpointConfigName=name, Tags=self.tags(resource, spec),
                                      **body)

    def _alarms(self, resource: str, spec: Any) -> list[str]:
        variants = [sagemaker_name(k) for k, v in spec.variants.items() if not v.shadow]
        desired = alarms.desired_alarms(self.endpoint_name(resource), variants, spec.rollback)
        return alarms.sync_alarms(self.clients.cloudwatch, desired, self.tags(resource, spec))

    # --- verbs ----------------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        name = self.endpoint_name(req.resource.name)
        config_name, body = self._config(req.resource.name, spec)
        self._ensure_config(config_name, body, req.resource.name, spec)
        alarm_names = self._alarms(req.resource.name, spec)
        sm = self.clients.sagemaker
        live = describe_or_none(sm.describe_endpoint, EndpointName=name)
        if live is None:
            progress(f"creating endpoint {name} on {config_name}")
            sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name,
                               Tags=self.tags(req.resource.name, spec))
        elif live["EndpointStatus"] in SETTLED and live["EndpointConfigName"] != config_name:
            progress(f"endpoint {name} exists on {live['EndpointConfigName']}: moving it")
            return self._roll(req.resource.name, spec, live["EndpointConfigName"],
                              config_name, alarm_names, progress)
        live = self._settle(name, progress)
        if live["EndpointStatus"] != "InService":
            return ApplyResponse(error=f"endpoint {name} {live['EndpointStatus']}: "
                                       f"{live.get('FailureReason', 'no reason given')}")
        live = self._apply_weights(name, spec, live, progress)
        return ApplyResponse(id=name,
                             outputs=self._outputs(live, alarm_names, spec.variants))

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        done = self._update(req, progress)
        # the recorded verdict of the experiment it still runs stays (a promoted winner
        # stays promoted)
        return replace(done, outputs={
            **done.outputs, **kept_verdict(req.prior_outputs, req.inputs.get("experiment"))}) \
            if done.outputs else done

    def _update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        name = self.endpoint_name(req.resource.name)
        config_name, body = self._config(req.resource.name, spec)
        live = self._settle(name, progress)
        alarm_names = self._alarms(req.resource.name, spec)
        if live["EndpointConfigName"] == config_name:
            live = self._apply_weights(name, spec, live, progress)
            self._drop_stale_alarms(req.resource.name, alarm_names)
            return ApplyResponse(id=name,
                             outputs=self._outputs(live, alarm_names, spec.variants))
        self._ensure_config(config_name, body, req.resource.name, spec)
        return self._roll(req.resource.name, spec, live["EndpointConfigName"], config_name,
                          alarm_names, progress)

    def _roll(self, resource: str, spec: Any, old_config: str, new_config: str,
              alarm_names: list[str], progress: Progress) -> ApplyResponse:
        """Move the endpoint onto `new_config`; keep `old_config` unless that succeeded."""
        name = self.endpoint_name(resource)
        sm = self.clients.sagemaker
        progress(f"updating endpoint {name}: {old_config} -> {new_config} "
                 f"({spec.rollout.strategy})")
        sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config,
                           DeploymentConfig=deployment_config(spec.rollout, alarm_names))
        live = self._settle(name, progress)
        reason = live.get("FailureReason", "no reason given")
        if live["EndpointStatus"] != "InService":
            return ApplyResponse(error=f"endpoint {name} {live['EndpointStatus']} during the "
                                       f"update to {new_config}: {reason}; {old_config} is kept")
        if live["EndpointConfigName"] != new_config:
            return ApplyResponse(error=f"endpoint {name} rolled back to "
                                       f"{live['EndpointConfigName']}: {reason}; the old "
                                       f"config {old_config} is kept",
                                 failure=Failure.ROLLED_BACK)
        sm.delete_endpoint_config(EndpointConfigName=old_config)
        self._drop_stale_alarms(resource, alarm_names)
        live = self._apply_weights(name, spec, live, progress)
        return ApplyResponse(id=name,
                             outputs=self._outputs(live, alarm_names, spec.variants))

    def _apply_weights(self, name: str, spec: Any, live: dict[str, Any],
                       progress: Progress) -> dict[str, Any]:
        desired = {sagemaker_name(k): float(v.weight) for k, v in spec.variants.items()
                   if not v.shadow}
        current = {v["VariantName"]: v.get("CurrentWeight")
                   for v in live.get("ProductionVariants", [])}
        if all(current.get(k) == w for k, w in desired.items()):
            return live
        progress(f"setting traffic weights of {name}: {desired}")
        self.clients.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[
                {"VariantName": k, "DesiredWeight": w} for k, w in desired.items()])
        return self._settle(name, progress)

    def _settle(self, name: str, progress: Progress) -> dict[str, Any]:
        sm = self.clients.sagemaker
        return self.wait(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus",
                         SETTLED, f"endpoint {name}", progress)

    def _drop_stale_alarms(self, resource: str, keep: list[str]) -> None:
        owned = alarms.owned_alarms(self.clients.cloudwatch, self.endpoint_name(resource) + "-",
                                    {STACK_TAG: self.ctx.stack, RESOURCE_TAG: resource})
        alarms.delete_alarms(self.clients.cloudwatch, sorted(set(owned) - set(keep)))

    def _outputs(self, live: dict[str, Any], alarm_names: list[str],
                 declared: Iterable[str] = ()) -> dict[str, Any]:
        """The endpoint's outputs; `traffic` is keyed by the spec's variant names (those in
        `declared`), as on every provider, not by the SageMaker names made of them
        (`model_b` serves as `model-b`), so a promoted winner is found by its name."""
        name = live["EndpointName"]
        by_sm_name = {sagemaker_name(k): k for k in declared}
        weights = {by_sm_name.get(v["VariantName"], v["VariantName"]):
                   float(v.get("CurrentWeight") or 0)
                   for v in live.get("ProductionVariants", [])}
        total = sum(weights.values()) or 1.0
        return {"url": f"https://runtime.sagemaker.{self.cfg.region}.amazonaws.com"
                       f"/endpoints/{name}/invocations",
                "name": name, "config_name": live["EndpointConfigName"],
                "traffic": {k: round(100 * w / total, 2) for k, w in weights.items()},
                "alarms": alarm_names, "arn": live["EndpointArn"]}

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = (req.outputs or {}).get("name") or self.endpoint_name(req.resource.name)
        live = describe_or_none(self.clients.sagemaker.describe_endpoint, EndpointName=name)
        if live is None:
            return ObserveResponse(exists=False, detail=f"endpoint {name} not found")
        status = live["EndpointStatus"]
        if req.idempotency_key and status == "Creating":
            # Made by an apply that was interrupted: not adopted until it serves; the
            # next create finds it by name and waits for it instead of making another.
            return ObserveResponse(exists=False, detail=f"endpoint {name} is Creating: "
                                                        "apply waits for it")
        return ObserveResponse(
            exists=True, id=name, inputs={"variants": self._live_weights(req.inputs, live)},
            outputs=self._outputs(live, (req.outputs or {}).get("alarms", []),
                                  self.spec(req.inputs).variants if req.inputs else ())
            | kept_verdict(req.outputs, (req.inputs or {}).get("experiment")),
            # An endpoint being updated still serves its previous config.
            healthy=status not in UNHEALTHY,
            detail=f"{status}: {live.get('FailureReason', '')}".rstrip(": "))

    def _live_weights(self, inputs: dict[str, Any] | None, live: dict[str, Any]
                      ) -> dict[str, Any]:
        """Variants whose live weight differs from the spec's (defaults included), so a
        weight left at its default is not mistaken for drift."""
        declared = self.spec(inputs).variants if inputs else {}
        by_sm_name = {sagemaker_name(k): k for k in declared}
        changed = {}
        for variant in live.get("ProductionVariants", []):
            key = by_sm_name.get(variant["VariantName"], variant["VariantName"])
            weight = round(float(variant.get("CurrentWeight") or 0))
            if key not in declared or declared[key].weight != weight:
                changed[key] = {"weight": weight}
        return changed

    def invoke(self, req: InvokeRequest) -> InvokeResponse:
        """InvokeEndpoint through sagemaker-runtime, with the body of `/predict`."""
        import json

        name = (req.outputs or {}).get("name") or self.endpoint_name(req.resource.name)
        try:
            r = self.clients.get("sagemaker-runtime").invoke_endpoint(
                EndpointName=name, ContentType="application/json", Accept="application/json",
                Body=json.dumps({"instances": req.instances}).encode())
            body = json.loads(r["Body"].read())
        except Exception as e:  # noqa: BLE001 - any failure is this call's answer
            status = getattr(e, "response", {}).get("ResponseMetadata", {}) \
                .get("HTTPStatusCode", 502)
            return InvokeResponse(error=f"endpoint {name}: {e}", status=int(status))
        return InvokeResponse(predictions=list(body.get("predictions") or []))

    def tick(self, req: TickRequest) -> TickResponse | None:
        """An experiment's verdict over the endpoint's captured requests and the feedback
        uploaded for them (see experiment.py); None for an endpoint without one."""
        from .experiment import verdict

        spec = self.spec(req.inputs)
        if spec.experiment is None:
            return None
        name = (req.outputs or {}).get("name") or self.endpoint_name(req.resource.name)
        live = describe_or_none(self.clients.sagemaker.describe_endpoint, EndpointName=name)
        if live is None:
            return TickResponse(error=f"endpoint {name} not found: its experiment cannot "
                                      "be measured")
        capture = live.get("DataCaptureConfig") or {}
        if not capture.get("EnableCapture"):
            return TickResponse(error=f"endpoint {name} captures no traffic, which its "
                                      "experiment reads: give it `logging: {sample_rate: 1.0}`")
        found = verdict(self.clients.s3, spec.experiment.model_dump(),
                        [k for k, v in spec.variants.items() if not v.shadow],
                        f"{capture['DestinationS3Uri'].rstrip('/')}/{name}/",
                        self.ground_truth_uri(name, spec), req.now)
        return TickResponse(outputs={"experiment": found}, events=[found["summary"]])

    def ground_truth_uri(self, name: str, spec: Any) -> str:
        """Where the feedback of endpoint `name` (its SageMaker name) is uploaded: its
        `provider_options.aws.ground_truth_uri`, else the prefix a monitor watching it
        reads by default."""
        chosen = self.options(spec).get("ground_truth_uri")
        if chosen:
            return str(chosen).rstrip("/") + "/"
        return self.layout.uri(self.layout.key("ground-truth", name)) + "/"

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        sm = self.clients.sagemaker
        name = (req.outputs or {}).get("name") or self.endpoint_name(req.resource.name)
        if describe_or_none(sm.describe_endpoint, EndpointName=name) is not None:
            progress(f"deleting endpoint {name}")
            sm.delete_endpoint(EndpointName=name)
            self.wait(lambda: describe_or_none(sm.describe_endpoint, EndpointName=name)
                      or {"EndpointStatus": "Deleted"}, "EndpointStatus", {"Deleted"},
                      f"endpoint {name}", progress)
        owner = {STACK_TAG: self.ctx.stack, RESOURCE_TAG: req.resource.name}
        for config in self._owned_configs(name, owner):
            sm.delete_endpoint_config(EndpointConfigName=config)
        alarms.delete_alarms(self.clients.cloudwatch,
                             alarms.owned_alarms(self.clients.cloudwatch, name + "-", owner))
        return DeleteResponse()

    def _owned_configs(self, name: str, owner: dict[str, str]) -> list[str]:
        sm = self.clients.sagemaker
        pages = sm.get_paginator("list_endpoint_configs").paginate(NameContains=name)
        found = []
        for config in (c for page in pages for c in page.get("EndpointConfigs", [])):
            tags = tag_dict(sm.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", []))
            if owner.items() <= tags.items():
                found.append(config["EndpointConfigName"])
        return found


def _experiment_problems(inputs: dict[str, Any]) -> list[Problem]:
    """An experiment reads data capture and feedback from S3: refused at plan when the
    endpoint captures nothing or names a feedback prefix that is not an s3:// uri."""
    problems = []
    experiment = inputs.get("experiment")
    logging = inputs.get("logging")
    rate = logging.get("sample_rate") if isinstance(logging, dict) else None
    if isinstance(experiment, dict) and isinstance(rate, int | float) and rate <= 0:
        problems.append(Problem(
            ("logging", "sample_rate"), "an experiment on aws reads which variant answered "
            "each request from SageMaker data capture, which sample_rate 0 turns off",
            help="set logging.sample_rate above 0 (1.0 captures every request)"))
    options = inputs.get("provider_options")
    chosen = (options.get("aws") or {}).get("ground_truth_uri") \
        if isinstance(options, dict) else None
    if isinstance(chosen, str) and not chosen.startswith("s3://"):
        problems.append(Problem(
            ("provider_options", "aws", "ground_truth_uri"),
            f"ground_truth_uri '{chosen}' is not an s3:// uri",
            help="write the S3 prefix the feedback is uploaded under: s3://<bucket>/<prefix>/"))
    return problems


def deployment_config(rollout: Any, alarm_names: list[str]) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for the stack's `rollout`."""
    wait = int(min(seconds(rollout.wait), MAX_WAIT_INTERVAL))
    if rollout.strategy == "canary":
        routing = {"Type": "CANARY", "WaitIntervalInSeconds": wait, "CanarySize": {
            "Type": "CAPACITY_PERCENT", "Value": int(rollout.steps[0])}}
    elif rollout.strategy == "linear":
        routing = {"Type": "LINEAR", "WaitIntervalInSeconds": wait, "LinearStepSize": {
            "Type": "CAPACITY_PERCENT", "Value": int(rollout.step_percent)}}
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": wait}}
    if alarm_names:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config
