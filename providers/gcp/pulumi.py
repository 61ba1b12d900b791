"""The gcp provider's resources as pulumi-gcp declarations, for `mlform export pulumi`.

pulumi-gcp can adopt a Vertex AI endpoint (`vertex.AiEndpoint`); it has no resource for
a Model Registry model, a model deployed on an endpoint or a custom job, and cannot
import a GCS object. The endpoint is read back live (GetEndpoint), as `pulumi import`
would read it; the rest is named in the program's header. Only reads.
"""

from __future__ import annotations

import json
from typing import Any

from mlform.engine.export.declarations import Declaration, PulumiExport
from mlform.engine.state.model import ResourceState

REQUIREMENT = "pulumi-gcp>=10.2.0,<11"

NOT_EXPRESSIBLE = {
    "dataset": "pulumi-gcp cannot import a GCS object (its BucketObject has no import); "
               "the dataset's object {uri} stays mlform's",
    "training_job": "a Vertex AI custom job is a finished run, and pulumi-gcp has no "
                    "resource for it; its artifact stays in the bucket",
    "model": "pulumi-gcp has no Vertex AI Model Registry resource: the model {uri} "
             "and its versions stay mlform's",
    "batch_job": "a Vertex AI batch prediction job is a one-off run, and pulumi-gcp has "
                 "no resource for it",
    "monitor": "monitors are evaluated by `mlform watch` from the endpoint's request "
               "log; there is no Vertex AI resource to declare",
    "retraining_policy": "retraining policies are decided by `mlform watch`; there is no "
                         "cloud resource to declare",
}


def export(provider: Any, entries: list[ResourceState]) -> PulumiExport:
    """The declarations of `entries`, read live through `provider`'s clients."""
    cfg = provider.clients.cfg
    declarations: list[Declaration] = []
    notes: list[str] = []
    if cfg.api_endpoint or provider.ctx.config.get("storage_endpoint"):
        notes.append(f"provider '{provider.ctx.provider_name}' talks to "
                     f"{cfg.api_endpoint or provider.ctx.config.get('storage_endpoint')}; "
                     "the program uses Google Cloud's own endpoints")
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.status != "ready" or not entry.id:
            notes.append(f"{entry.type} '{entry.name}' is {entry.status} in state: apply "
                         "the stack, then export again")
        elif entry.type == "endpoint":
            found, more = _endpoint(provider, entry)
            declarations += found
            notes += more
        else:
            why = NOT_EXPRESSIBLE.get(entry.type, "no pulumi-gcp resource")
            notes.append(f"{entry.type} '{entry.name}': "
                         + why.format(uri=entry.outputs.get("uri", entry.id)))
    return PulumiExport(module="pulumi_gcp", alias="gcp", requirement=REQUIREMENT,
                        provider_args={"project": cfg.project, "region": cfg.region},
                        declarations=declarations, notes=notes)


def _endpoint(provider: Any, entry: ResourceState) -> tuple[list[Declaration], list[str]]:
    cfg = provider.clients.cfg
    name = entry.provider_outputs.get("endpoint") or entry.id
    live = provider.clients.get_or_none("endpoints", "get_endpoint", name, entry.name)
    if live is None:
        return [], [f"endpoint '{entry.name}': {name} is gone: run mlform apply, then "
                    "export again"]
    endpoint_id = live.name.rsplit("/", 1)[-1]
    split = {str(k): int(v) for k, v in dict(live.traffic_split).items()}
    deployed = ", ".join(f"'{d.display_name}' ({d.model.rsplit('/', 1)[-1]})"
                         for d in live.deployed_models)
    return [Declaration(
        name=entry.name, cls="vertex.AiEndpoint", source=entry.name,
        import_id=f"projects/{cfg.project}/locations/{cfg.region}/endpoints/{endpoint_id}",
        args={"name": endpoint_id, "display_name": live.display_name,
              "description": live.description, "location": cfg.region,
              "project": cfg.project, "labels": dict(live.labels),
              # Deployed model id -> percent, as Vertex AI reports it; mlform's rollouts
              # move it, so the program records it and ignores later changes.
              "traffic_split": json.dumps(split, sort_keys=True)},
        ignore_changes=("traffic_split",))], [
        f"endpoint '{entry.name}': the models deployed on it ({deployed or 'none'}) are "
        "mlform's: pulumi-gcp has no resource that deploys a Model Registry model",
        f"endpoint '{entry.name}': its id '{endpoint_id}' starts with a letter, which "
        "Vertex AI accepts; pulumi-gcp documents numeric endpoint names"]
