"""Models: a SageMaker Model plus a version in a model package group (the registry).

A version is registered (ModelApprovalStatus Approved) only when every gate passes;
a failed gate registers nothing, so nothing downstream changes. Each version records
the SageMaker Model that serves it and a fingerprint of what produced it, so a
create repeated after an interrupted apply adopts the version instead of adding one.

A model with `source:` (a model file made elsewhere) registers the artifact imported.py
uploads for it instead of a training job's; its file version is kept in the outputs,
so a plan tells when the file changed.
"""

from __future__ import annotations

import json
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    Failure,
    ObserveRequest,
    ObserveResponse,
    Progress,
    UpdateRequest,
    default_diff,
)
from mlform.engine.redaction import HIDDEN, sensitive_fields, sensitive_gate_bounds
from mlform.engine.values import contains_unknown, reveal
from mlform.ml.byom import format_of
from mlform.ml.byom_source import file_version, source_path

from . import imported, packaging
from .compute import image_uri
from .dataset import delete_prefix
from .gates import GateRunner
from .handler import Handler, describe_or_none
from .moves import ModelMoves
from .naming import fingerprint, tag_dict

FINGERPRINT = "mlform:fingerprint"
SAGEMAKER_MODEL = "mlform:sagemaker-model"


class ModelHandler(ModelMoves, Handler):
    rtype = "model"

    def group_name(self, resource: str, spec: Any) -> str:
        return self.name(spec.name or resource)

    def diff(self, req: DiffRequest) -> DiffResponse:
        """A `source:` file is checked at plan, and a new content of it, under the same
        path, plans an update that registers a new version."""
        base = default_diff(req)
        source = req.desired_inputs.get("source")
        if not isinstance(source, dict) or contains_unknown(source.get("path")):
            return base
        source = reveal(source)
        try:
            format_of(source_path(self.ctx.stack_dir, source), source.get("format"))
            new = file_version(self.ctx.stack_dir, source)
        except ValueError as e:
            return DiffResponse(error=f"model '{req.resource.name}': {e}")
        old = ((req.prior_outputs or {}).get("source") or {}).get("version")
        if req.prior_inputs is None or old in (None, new):
            return base
        return DiffResponse(changes=base.changes, note=f"model file '{source['path']}' "
                                                       f"changed: version {old} -> {new}")

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        """A new artifact or new gates register a new version; the old one stays."""
        return self._register(req.resource, req.inputs, progress)

    def _register(self, ref: Any, inputs: dict[str, Any], progress: Progress,
                  results: list[Any] | None = None) -> ApplyResponse:
        """`results`: gate results already known (a model moved here with its recorded
        ones, see moves.py); None judges the gates."""
        spec = self.spec(inputs)
        importance = None
        source = None
        if spec.source is not None:  # bring your own model: the file, as an artifact
            source = spec.source.model_dump()
            try:
                artifact = imported.materialise(self, ref.name, source,
                                                tag_dict(self.tags(ref.name, spec)), progress)
            except ValueError as e:
                return ApplyResponse(error=f"model '{ref.name}': {e}")
            spec = spec.model_copy(update={"artifact": artifact})
        if results is None:
            runner = GateRunner(self)
            results = runner.judge(ref.name, spec, progress, sensitive_gate_bounds(inputs))
            importance = runner.importance
        # Card fields from sensitive values read "(sensitive)", as in the local card.
        hidden = sensitive_fields(inputs, ("owner", "intended_use", "description"))
        failed = [r for r in results if not r.passed]
        if failed:
            return ApplyResponse(error="; ".join(r.failure() for r in failed)
                                 + f"; model '{ref.name}' was not registered",
                                 failure=Failure.GATE_FAILED)
        sm = self.clients.sagemaker
        group = self.group_name(ref.name, spec)
        if describe_or_none(sm.describe_model_package_group,
                            ModelPackageGroupName=group) is None:
            sm.create_model_package_group(
                ModelPackageGroupName=group, Tags=self.tags(ref.name, spec),
                ModelPackageGroupDescription=(HIDDEN if "description" in hidden else
                                              spec.description or
                                              f"mlform model {ref.name} of {self.ctx.stack}"))
        # the gates as written (sensitive bounds included: a changed bound is a new
        # version) and what they measured
        digest = fingerprint({"artifact": spec.artifact,
                              "gates": [g.model_dump(mode="json") for g in spec.gates],
                              "results": [r.to_dict() for r in results]})
        container = self._container(ref.name, spec)
        model_name = self.name(ref.name, digest)
        if describe_or_none(sm.describe_model, ModelName=model_name) is None:
            sm.create_model(ModelName=model_name, PrimaryContainer=container,
                            ExecutionRoleArn=self.cfg.role_arn, Tags=self.tags(ref.name, spec))
        package = self._find_version(group, digest)
        if package is None:
            progress(f"registering a new version of {group}")
            metadata = {FINGERPRINT: digest, SAGEMAKER_MODEL: model_name,
                        "mlform:aliases": ",".join(spec.aliases),
                        "mlform:gates": json.dumps([r.to_dict() for r in results])[:1024]}
            if importance and importance.get("features"):
                metadata["mlform:importance"] = _ranking(importance)
            if spec.owner:
                metadata["mlform:owner"] = HIDDEN if "owner" in hidden else spec.owner
            use = HIDDEN if "intended_use" in hidden else spec.intended_use
            arn = sm.create_model_package(
                ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                ModelPackageDescription=(use or f"artifact {spec.artifact}")[:1024],
                InferenceSpecification={"Containers": [container],
                                        "SupportedContentTypes": ["application/json"],
                                        "SupportedResponseMIMETypes": ["application/json"]},
                CustomerMetadataProperties=metadata, Tags=self.tags(ref.name, spec),
            )["ModelPackageArn"]
            package = sm.describe_model_package(ModelPackageName=arn)
        outputs = self._outputs(package, group, results)
        if source is not None:  # private: the plan compares the file's version with it
            outputs["source"] = {"path": str(source["path"]), "artifact": spec.artifact,
                                 "version": file_version(self.ctx.stack_dir, source)}
        if importance:
            outputs["importance"] = importance
        return ApplyResponse(id=package["ModelPackageArn"], outputs=outputs)

    def _container(self, resource: str, spec: Any) -> dict[str, Any]:
        """The PyTorch inference image running mlform's serving script on the artifact."""
        options = self.options(spec)
        data = packaging.tarball(packaging.bundle("serve", {"resource": resource}))
        key = self.layout.code_key(resource, packaging.digest(data))
        packaging.upload_once(self.clients.s3, self.cfg.bucket, key, data,
                              tag_dict(self.tags(resource, spec)))
        return {"Image": image_uri(self.cfg, "inference", False, options),
                "ModelDataUrl": str(spec.artifact),
                "Environment": {"SAGEMAKER_PROGRAM": "serve.py",
                                "SAGEMAKER_SUBMIT_DIRECTORY": self.layout.uri(key),
                                "SAGEMAKER_REGION": self.cfg.region}}

    def _find_version(self, group: str, digest: str) -> dict[str, Any] | None:
        sm = self.clients.sagemaker
        for summary in self._versions(group):
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if package.get("CustomerMetadataProperties", {}).get(FINGERPRINT) == digest:
                return package
        return None

    def _versions(self, group: str) -> list[dict[str, Any]]:
        pages = self.clients.sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group)
        return [s for page in pages for s in page.get("ModelPackageSummaryList", [])]

    @staticmethod
    def _outputs(package: dict[str, Any], group: str, results: list[Any]) -> dict[str, Any]:
        return {"uri": package["ModelPackageArn"], "name": group,
                "version": package.get("ModelPackageVersion"),
                "sagemaker_model": package["CustomerMetadataProperties"][SAGEMAKER_MODEL],
                "gates": [r.to_dict() for r in results]}

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        arn = (req.outputs or {}).get("uri")
        if not arn:
            return ObserveResponse(exists=False)
        sm = self.clients.sagemaker
        package = describe_or_none(sm.describe_model_package, ModelPackageName=arn)
        if package is None:
            return ObserveResponse(exists=False, detail=f"model package {arn} is gone")
        model = package.get("CustomerMetadataProperties", {}).get(SAGEMAKER_MODEL)
        if describe_or_none(sm.describe_model, ModelName=model) is None:
            return ObserveResponse(exists=False, id=arn,
                                   detail=f"SageMaker model {model} serving {arn} is gone")
        status = package.get("ModelApprovalStatus")
        return ObserveResponse(exists=True, id=arn, outputs=req.outputs,
                               healthy=status == "Approved",
                               detail=f"approval status {status}")

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """Every version of the group goes, with the SageMaker Model serving it, and the
        serving and evaluation code, gate evaluations and imported artifacts stored for
        the model."""
        sm = self.clients.sagemaker
        group = (req.outputs or {}).get("name") or \
            self.group_name(req.resource.name, self.spec(req.inputs))
        for summary in self._versions(group):
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            model = package.get("CustomerMetadataProperties", {}).get(SAGEMAKER_MODEL)
            if model and describe_or_none(sm.describe_model, ModelName=model) is not None:
                sm.delete_model(ModelName=model)
            sm.delete_model_package(ModelPackageName=summary["ModelPackageArn"])
        if describe_or_none(sm.describe_model_package_group,
                            ModelPackageGroupName=group) is not None:
            sm.delete_model_package_group(ModelPackageGroupName=group)
        for area in ("code", "evaluations", "imported"):
            delete_prefix(self.clients.s3, self.cfg.bucket,
                          self.layout.key(area, req.resource.name) + "/")
        self._disown_evaluations(req.resource.name, req.inputs)
        return DeleteResponse()

    def _disown_evaluations(self, resource: str, inputs: dict[str, Any]) -> None:
        """Processing jobs cannot be deleted: the gate evaluations of this model lose
        mlform's ownership tags instead, so nothing tagged for the stack is left."""
        sm = self.clients.sagemaker
        prefix = self.name(resource, "eval") + "-"
        keys = [t["Key"] for t in self.tags(resource, self.spec(inputs))]
        pages = sm.get_paginator("list_processing_jobs").paginate(NameContains=prefix)
        for page in pages:
            for job in page["ProcessingJobSummaries"]:
                if job["ProcessingJobName"].startswith(prefix):
                    sm.delete_tags(ResourceArn=job["ProcessingJobArn"], TagKeys=keys)


def _ranking(importance: dict[str, Any]) -> str:
    """The version's features, most important first, as its metadata keeps them (a
    value holds at most 256 characters): "merchant_risk=0.2330,amount=0.0340"."""
    return ",".join(f"{f['feature']}={f['importance']:.4f}"
                    for f in importance["features"])[:256]
