"""Monitors: the endpoint's request log in blob (written by the scoring script, read by
requestlog.py) evaluated against the reference dataset by `mlform.ml.monitoring` on each
`mlform watch` pass, exactly as the local provider evaluates its logged traffic: the same
evaluation, `last_evaluation` and breach. Each evaluation is stored under
`<prefix>/<stack>/monitors/<name>/evaluations/<time>.json` with its page at
`.../report.html`.

Performance is scored against ground truth users upload to blob: by default under
`<prefix>/<stack>/ground-truth/<endpoint>/`, or the monitor's
`provider_options.azure.ground_truth_uri` (a datastore uri); labels join the logged
requests by request id.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    TickRequest,
    TickResponse,
    UpdateRequest,
)

from .errors import AzureError
from .handler import Handler


class MonitorHandler(Handler):
    rtype = "monitor"

    def check(self, req: CheckRequest) -> CheckResponse:
        problems = super().check(req).problems
        options = req.inputs.get("provider_options")
        chosen = (options.get("azure") or {}).get("ground_truth_uri") \
            if isinstance(options, dict) else None
        if isinstance(chosen, str) and not chosen.startswith("azureml://datastores/"):
            problems.append(Problem(
                ("provider_options", "azure", "ground_truth_uri"),
                f"ground_truth_uri '{chosen}' is not a datastore uri",
                help="write the prefix the labels are uploaded under: "
                     "azureml://datastores/<datastore>/paths/<prefix>/"))
        return CheckResponse(problems=problems)

    def _endpoint(self, resource: str, spec: Any) -> str:
        if not spec.endpoint:
            raise AzureError(f"monitor '{resource}': on azure a monitor watches an endpoint")
        name = str(spec.endpoint)
        found = self.clients.get_or_none("endpoints",
                                         lambda: self.ml.online_endpoints.get(name), resource)
        if found is None:
            raise AzureError(f"monitor '{resource}': endpoint '{spec.endpoint}' not found; a "
                             "monitor on azure takes an azure endpoint's `name`")
        return name

    def _stored(self, resource: str, spec: Any, endpoint: str) -> dict[str, str]:
        return {"evaluations": self.layout.uri(self._key(resource, "evaluations")) + "/",
                "report": self.layout.uri(self._key(resource, "report.html")),
                "requests_uri": self.layout.uri(self.layout.requests_prefix(endpoint)),
                "ground_truth_uri": self.ground_truth_uri(spec, endpoint)}

    def _key(self, resource: str, *parts: str) -> str:
        return self.layout.key("monitors", resource, *parts)

    def ground_truth_uri(self, spec: Any, endpoint: str) -> str:
        chosen = self.options(spec).get("ground_truth_uri")
        if chosen:
            return str(chosen).rstrip("/") + "/"
        return self.layout.uri(self.layout.ground_truth_prefix(endpoint))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        endpoint = self._endpoint(req.resource.name, spec)
        return ApplyResponse(id=req.resource.name, outputs={
            **self._stored(req.resource.name, spec, endpoint), "last_evaluation": None})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        spec = self.spec(req.inputs)
        endpoint = self._endpoint(req.resource.name, spec)
        return ApplyResponse(id=req.resource.name, outputs={
            **req.prior_outputs, **self._stored(req.resource.name, spec, endpoint)})

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        if req.outputs is None:
            return ObserveResponse(exists=False)
        try:
            self._endpoint(req.resource.name, self.spec(req.inputs or {}))
        except AzureError as exc:
            return ObserveResponse(exists=True, id=req.resource.name, outputs=req.outputs,
                                   healthy=False, detail=str(exc))
        return ObserveResponse(exists=True, id=req.resource.name, outputs=req.outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        self.blob(req.resource.name).delete_prefix(self._key(req.resource.name) + "/")
        return DeleteResponse()

    def tick(self, req: TickRequest) -> TickResponse:
        """One evaluation by `mlform.ml.monitoring`, the same as on local: the logged
        requests against the reference dataset, stored (json and html report) under the
        monitor's blob prefix."""
        from mlform.ml.monitoring import outcome
        from mlform.ml.monitoring.evaluate import evaluate
        from mlform.ml.monitoring.report import html

        from .requestlog import feedback_note, read_requests

        name = req.resource.name
        spec = self.spec(req.inputs)
        try:
            endpoint = self._endpoint(name, spec)
            stored = self._stored(name, spec, endpoint)
            # labels are read only for a monitor that scores them
            truth = self.layout.key_of(stored["ground_truth_uri"]) if spec.performance \
                else None
            traffic = read_requests(self.blob(name), self.layout.requests_prefix(endpoint),
                                    spec.window_rows, truth)
            evaluation = evaluate(spec, traffic, self._reference(str(spec.reference)),
                                  req.now, name=name,
                                  feedback=feedback_note(stored["ground_truth_uri"]))
        except (AzureError, ValueError) as err:
            return TickResponse(error=f"monitor '{name}' could not evaluate: {err}")
        stamp = datetime.fromtimestamp(req.now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        json_uri = self._put(self._key(name, "evaluations", f"{stamp}.json"),
                             json.dumps(evaluation, indent=2, sort_keys=True),
                             "application/json")
        report = self._put(self._key(name, "report.html"), html(evaluation), "text/html")
        return TickResponse(
            outputs={**req.outputs, **stored,
                     "last_evaluation": outcome.last_evaluation(evaluation, json_uri, report)},
            breach=outcome.breach(evaluation),
            events=[outcome.event(name, evaluation, report)])

    def _reference(self, uri: str) -> Any:
        """The reference dataset's rows, sampled as every provider samples them."""
        import pandas as pd
        from mlform.ml.monitoring.evaluate import sample_reference

        key = self.layout.key_of(uri)
        body = self.blob().get(key)
        if body is None:
            raise AzureError(f"the reference dataset {uri} is gone")
        frame = pd.read_parquet(io.BytesIO(body)) if key.endswith(".parquet") \
            else pd.read_csv(io.BytesIO(body))
        return sample_reference(frame)

    def _put(self, key: str, text: str, content_type: str) -> str:
        self.blob().put(key, text.encode(), {}, content_type)
        return self.layout.uri(key)
