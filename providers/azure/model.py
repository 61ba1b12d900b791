"""Models: versions in the workspace's model registry, one registry model per resource.

A version is registered only when every gate passes (`mlform.ml.gates`, see gates.py); a
failed gate registers nothing, so nothing downstream changes. Versions are numbered by
the registry's order (the next integer); each carries the fingerprint of what produced it
(artifact, gates and their results) as a tag, so a create repeated after an interrupted
apply adopts the version instead of registering another. mlform's aliases are the tag
`mlform-aliases: champion,canary` on the version registered with them.
"""

from __future__ import annotations

from functools import partial
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

from .errors import is_not_found
from .gates import GateRunner
from .handler import Handler
from .naming import ALIASES_TAG, FINGERPRINT_TAG, fingerprint


class ModelHandler(Handler):
    rtype = "model"

    def model_name(self, resource: str, spec: Any) -> str:
        return self.asset_name(spec.name or resource)

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._register(req.resource, req.inputs, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        """A new artifact or new gates register a new version; the old one stays."""
        return self._register(req.resource, req.inputs, progress)

    def _versions(self, name: str, resource: str) -> list[Any]:
        try:
            return list(self.clients.call("models", lambda: list(self.ml.models.list(
                name=name)), resource=resource))
        except Exception as exc:
            if is_not_found(exc):
                return []
            raise

    def _register(self, ref: Any, inputs: dict[str, Any], progress: Progress) -> ApplyResponse:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        spec = self.spec(inputs)
        results = GateRunner(self).judge(ref.name, spec, progress,
                                         sensitive_gate_bounds(inputs))
        failed = [r for r in results if not r.passed]
        if failed:
            return ApplyResponse(error="; ".join(r.failure() for r in failed)
                                 + f"; model '{ref.name}' was not registered",
                                 failure=Failure.GATE_FAILED)
        name = self.model_name(ref.name, spec)
        digest = fingerprint({"artifact": spec.artifact,
                              "gates": [g.model_dump(mode="json") for g in spec.gates],
                              "results": [r.to_dict() for r in results]})
        versions = self._versions(name, ref.name)
        found = next((v for v in versions
                      if (v.tags or {}).get(FINGERPRINT_TAG) == digest), None)
        if found is None:
            number = 1 + max((int(v.version) for v in versions if str(v.version).isdigit()),
                             default=0)
            progress(f"registering version {number} of {name}")
            hidden = sensitive_fields(inputs, ("owner", "intended_use", "description"))
            description = HIDDEN if "description" in hidden else spec.description
            model = Model(name=name, version=str(number), type=AssetTypes.CUSTOM_MODEL,
                          path=str(spec.artifact),
                          description=description or f"mlform model {ref.name} of "
                                                     f"{self.ctx.stack}",
                          tags=self.tags(ref.name, spec, **{
                              FINGERPRINT_TAG: digest,
                              ALIASES_TAG: ",".join(spec.aliases)}))
            found = self.clients.call("models",
                                      lambda: self.ml.models.create_or_update(model),
                                      resource=ref.name)
        else:
            progress(f"version {found.version} of {name} was registered already")
        return ApplyResponse(id=f"azureml:{name}:{found.version}",
                             outputs=self._outputs(found, results))

    @staticmethod
    def _outputs(version: Any, results: list[Any]) -> dict[str, Any]:
        return {"uri": f"azureml:{version.name}:{version.version}", "name": version.name,
                "version": int(version.version), "gates": [r.to_dict() for r in results],
                "aliases": (version.tags or {}).get(ALIASES_TAG, "")}

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        uri = (req.outputs or {}).get("uri") or req.resource.id
        if not uri:
            return ObserveResponse(exists=False)
        _, name, version = str(uri).split(":", 2)
        found = self.clients.get_or_none(
            "models", lambda: self.ml.models.get(name, version=version), req.resource.name)
        if found is None:
            return ObserveResponse(exists=False, detail=f"model version {uri} is gone")
        outputs = dict(req.outputs or {})
        return ObserveResponse(exists=True, id=uri, outputs=outputs or None,
                               detail=f"aliases {(found.tags or {}).get(ALIASES_TAG, '')}")

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """Every version of the registry model is archived (the registry deletes none a
        deployment may use), and the gate evaluations stored for it go."""
        resource = req.resource.name
        uri = (req.outputs or {}).get("uri") or req.resource.id
        name = str(uri).split(":")[1] if uri and str(uri).startswith("azureml:") else \
            self.model_name(resource, self.spec(req.inputs))
        for version in self._versions(name, resource):
            progress(f"archiving {name}:{version.version}")
            try:
                self.clients.call("models", partial(self.ml.models.archive, name,
                                                    version=version.version),
                                  resource=resource)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        self.blob(resource).delete_prefix(self.layout.key("evaluations", resource) + "/")
        return DeleteResponse()
