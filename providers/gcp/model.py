"""Models: versions in the Vertex AI Model Registry, one registry model per resource.

The first registration is `UploadModel` with a caller-chosen `model_id` (the stack and the
resource); later ones are new versions under it (`parent_model`). A version is uploaded
only when every gate passes (`mlform.ml.gates`, see gates.py); a failed gate registers
nothing, so nothing downstream changes. mlform's aliases are the version's
`version_aliases` (moved from the version that had them), and the newest registered
version is the registry's `default`. Each version carries the fingerprint of what
produced it (artifact, gates and their results) as a label, so a create repeated after
an interrupted apply adopts the version instead of uploading another.

A version's serving container is the prebuilt PyTorch image running mlform's serving
script (container_serve.py) on the artifact, under Vertex AI's custom-container contract.
"""

from __future__ import annotations

from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    Failure,
    ObserveRequest,
    ObserveResponse,
    Progress,
    UpdateRequest,
)
from mlform.engine.redaction import HIDDEN, sensitive_fields, sensitive_gate_bounds

from . import packaging
from .compute import image_uri
from .errors import is_not_found
from .gates import GateRunner
from .handler import Handler
from .moves import ModelMoves
from .naming import (
    FINGERPRINT_LABEL,
    RESOURCE_LABEL,
    STACK_LABEL,
    TYPE_LABEL,
    fingerprint,
    label_filter,
    label_value,
)
from .waiting import SETTLED, state_name

SERVING_PORT = 8080
PREDICT_ROUTE = "/predict"
HEALTH_ROUTE = "/health"


def alias(name: str) -> str:
    """An mlform alias as a Vertex AI version alias (`[a-z][a-zA-Z0-9-]*`)."""
    clean = "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower())
    return clean if clean[:1].isalpha() else f"a-{clean}"


class ModelHandler(ModelMoves, Handler):
    rtype = "model"

    def model_id(self, resource: str, spec: Any) -> str:
        return self.vertex_id(spec.name or resource)

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
        if results is None:
            results = GateRunner(self).judge(ref.name, spec, progress,
                                             sensitive_gate_bounds(inputs))
        failed = [r for r in results if not r.passed]
        if failed:
            return ApplyResponse(error="; ".join(r.failure() for r in failed)
                                 + f"; model '{ref.name}' was not registered",
                                 failure=Failure.GATE_FAILED)
        model_id = self.model_id(ref.name, spec)
        parent = self.name("models", model_id)
        digest = fingerprint({"artifact": spec.artifact,
                              "gates": [g.model_dump(mode="json") for g in spec.gates],
                              "results": [r.to_dict() for r in results]})
        version = self._find_version(parent, digest, ref.name)
        aliases = [alias(a) for a in spec.aliases]
        if version is None:
            progress(f"registering a new version of {model_id}")
            exists = self.clients.get_or_none("models", "get_model", parent, ref.name)
            hidden = sensitive_fields(inputs, ("owner", "intended_use", "description"))
            body: dict[str, Any] = {
                "parent": self.cfg.parent,
                "model": self._model(ref.name, spec, digest, ["default", *aliases], hidden)}
            if exists is None:
                body["model_id"] = model_id
            else:
                body["parent_model"] = exists.name
            if self.cfg.service_account:
                body["service_account"] = self.cfg.service_account
            done = self.clients.operation("models", "upload_model", body,
                                          self.cfg.timeout(self.rtype), resource=ref.name)
            version = self.clients.call("models", "get_model",
                                        {"name": f"{done.model}@{done.model_version_id}"},
                                        resource=ref.name)
        else:
            progress(f"version {version.version_id} of {model_id} was registered already")
        missing = [a for a in ["default", *aliases] if a not in version.version_aliases]
        if missing:
            version = self.clients.call("models", "merge_version_aliases", {
                "name": f"{version.name}@{version.version_id}", "version_aliases": missing},
                resource=ref.name)
        return ApplyResponse(id=f"{version.name}@{version.version_id}",
                             outputs=self._outputs(version, results))

    def _model(self, resource: str, spec: Any, digest: str, aliases: list[str],
               hidden: Any) -> dict[str, Any]:
        """The UploadModel body's model: the serving container on the artifact."""
        options = self.options(spec)
        data = packaging.tarball(packaging.bundle("serve", {"resource": resource}))
        key = self.layout.code_key(resource, packaging.digest(data))
        self.gcs(resource).put_once(self.cfg.bucket, key, data, self.labels(resource, spec))
        command, args = packaging.command(self.layout.uri(key), "serve")
        use = HIDDEN if "intended_use" in hidden else spec.intended_use
        description = HIDDEN if "description" in hidden else spec.description
        return {
            "display_name": self.model_id(resource, spec),
            "description": description or f"mlform model {resource} of {self.ctx.stack}",
            "version_description": (use or f"artifact {spec.artifact}")[:1000],
            "artifact_uri": str(spec.artifact),
            "version_aliases": aliases,
            "labels": self.labels(resource, spec, **{FINGERPRINT_LABEL: digest}),
            "container_spec": {
                "image_uri": image_uri(self.cfg, "serving", False, options),
                "command": command, "args": args,
                "env": [{"name": "MLFORM_REQUEST_LOG",
                         "value": self.layout.uri(self.layout.key("requests"))},
                        {"name": "MLFORM_MODEL_URI", "value": self.name(
                            "models", self.model_id(resource, spec))},
                        {"name": "MLFORM_LOG_FLUSH_SECONDS",
                         "value": str(self.cfg.log_flush_seconds)}],
                "ports": [{"container_port": SERVING_PORT}],
                "predict_route": PREDICT_ROUTE, "health_route": HEALTH_ROUTE}}

    def _versions(self, parent: str, resource: str) -> list[Any]:
        try:
            return list(self.clients.call("models", "list_model_versions", {"name": parent},
                                          resource=resource))
        except Exception as exc:
            if is_not_found(exc):
                return []
            raise

    def _find_version(self, parent: str, digest: str, resource: str) -> Any:
        for version in self._versions(parent, resource):
            if version.labels.get(FINGERPRINT_LABEL) == label_value(digest):
                return version
        return None

    @staticmethod
    def _outputs(version: Any, results: list[Any]) -> dict[str, Any]:
        return {"uri": f"{version.name}@{version.version_id}",
                "name": version.name.rsplit("/", 1)[-1], "version": int(version.version_id),
                "gates": [r.to_dict() for r in results], "registry_model": version.name}

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        uri = (req.outputs or {}).get("uri") or req.resource.id
        if not uri:
            return ObserveResponse(exists=False)
        version = self.clients.get_or_none("models", "get_model", uri, req.resource.name)
        if version is None:
            return ObserveResponse(exists=False, detail=f"model version {uri} is gone")
        outputs = dict(req.outputs or {})
        return ObserveResponse(exists=True, id=uri, outputs=outputs or None,
                               detail=f"aliases {', '.join(version.version_aliases)}")

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """The registry model goes with every version, and the code and gate evaluations
        stored for it."""
        parent = (req.outputs or {}).get("registry_model") or \
            self.name("models", self.model_id(req.resource.name, self.spec(req.inputs)))
        if self.clients.get_or_none("models", "get_model", parent, req.resource.name):
            progress(f"deleting {parent}")
            try:
                self.clients.operation("models", "delete_model", {"name": parent},
                                       self.cfg.timeout(self.rtype), resource=req.resource.name)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        self._delete_evaluation_jobs(req.resource.name, progress)
        gcs = self.gcs(req.resource.name)
        for area in ("code", "evaluations"):
            gcs.delete_prefix(self.cfg.bucket, self.layout.key(area, req.resource.name) + "/")
        return DeleteResponse()

    def _delete_evaluation_jobs(self, resource: str, progress: Progress) -> None:
        """The gate evaluation custom jobs run for this model (labelled with it) go too."""
        listed = self.clients.call("jobs", "list_custom_jobs", {
            "parent": self.cfg.parent, "filter": label_filter(**{
                STACK_LABEL: label_value(self.ctx.stack), RESOURCE_LABEL: label_value(resource),
                TYPE_LABEL: self.rtype})}, resource=resource)
        for job in listed:
            if state_name(job.state) not in SETTLED:
                self.clients.call("jobs", "cancel_custom_job", {"name": job.name},
                                  resource=resource)
            progress(f"deleting gate evaluation job {job.name}")
            try:
                self.clients.operation("jobs", "delete_custom_job", {"name": job.name},
                                       self.cfg.timeout(self.rtype), resource=resource)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
