"""The `gateway` resource on aws: Route 53 weighted records, one per route.

`provider_options: {aws: {hosted_zone: example.com, record_name: fraud.example.com}}`
names the zone (by name or id) and the record clients resolve; each route is a
weighted CNAME (`SetIdentifier` the endpoint's resource name) to the host of its
endpoint's url, with the route's weight. A route's new endpoint is checked for parity
on held-out rows first (`mlform.ml.gateway.parity`, through the endpoints' providers'
`invoke`), then the weights step by its rollout (`mlform.ml.gateway.cutover`).

What DNS cannot do, and so this cannot judge: resolvers see no requests, so each step
is judged on probes the apply itself sends to the new endpoint (the held-out rows,
`rollback.min_requests` times), not on the clients' traffic; clients cache answers for
the record's TTL, so a step's share is reached only after it; and every SageMaker
endpoint of a region shares one host (`runtime.sagemaker.<region>.amazonaws.com`,
the endpoint is in the path), so weights split traffic between hosts only: endpoints
behind their own names (another cloud, a load balancer, a local server's public name).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

from mlform.engine.provider import (
    ApplyResponse,
    CheckRequest,
    CheckResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    Failure,
    ObserveRequest,
    ObserveResponse,
    Problem,
    Progress,
    UpdateRequest,
)
from mlform.engine.spec.models import Gateway, Rollback, Rollout
from mlform.engine.values import reveal
from mlform.ml.gateway import parity
from mlform.ml.gateway.cutover import cut_over
from mlform.ml.gateway.sides import asker

from .handler import Handler

OPTIONS_HELP = ("write provider_options: {aws: {hosted_zone: example.com, "
                "record_name: fraud.example.com}}")


class GatewayHandler(Handler):
    rtype = "gateway"

    def check(self, req: CheckRequest) -> CheckResponse:
        options = (req.inputs.get("provider_options") or {}).get("aws") or {}
        return CheckResponse(problems=[
            Problem(("provider_options", "aws"), f"a Route 53 gateway needs '{key}'",
                    help=OPTIONS_HELP)
            for key in ("hosted_zone", "record_name") if not options.get(key)])

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        zone, record = self._where(req.inputs or {})
        live = self._records(zone, record)
        if not live:
            return ObserveResponse(exists=False, detail=f"no weighted records {record}")
        return ObserveResponse(exists=True, id=record, outputs=_outputs(record, live))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        zone, record = self._where(req.inputs)
        weights = _weights(req.inputs)
        self._set(zone, record, _targets(req.inputs), weights)
        progress(f"weighted records {record}: {weights}")
        return ApplyResponse(id=record, outputs=_outputs(record, weights))

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        zone, record = self._where(req.inputs)
        spec = self._gateway(req.inputs)
        before, after = _weights(req.prior_inputs), _weights(req.inputs)
        targets = {**_targets(req.prior_inputs), **_targets(req.inputs)}
        new = [k for k in after if _targets(req.inputs)[k] != _targets(req.prior_inputs).get(k)]
        if not new or not before:
            self._set(zone, record, targets, after, drop=set(before) - set(after))
            return ApplyResponse(id=record, outputs=_outputs(record, after))
        backends = {r["backend"]["resource"]: r["backend"]
                    for r in reveal(req.inputs)["routes"]}
        old_backend = next(r["backend"] for r in reveal(req.prior_inputs)["routes"])
        rows, sources = parity.sample(parity.held_out_rows(spec.parity.holdout), [],
                                      spec.parity.sample)
        for name in new:
            result = parity.check(rows, spec.parity, sources,
                                  asker(old_backend, self.ctx.stack, self.ctx.stack_dir),
                                  asker(backends[name], self.ctx.stack, self.ctx.stack_dir))
            progress(f"parity: {result.describe()}")
            if not result.ok:
                return ApplyResponse(id=record, outputs=_outputs(record, before),
                                     error=f"gateway '{req.resource.name}': parity failed, "
                                           f"no traffic moved: {result.describe()}",
                                     failure=Failure.PARITY_FAILED)
        first = backends[new[0]]
        rollback = Rollback.model_validate(reveal(first["rollback"]))
        router = _Router(self, zone, record, targets, before, after,
                         asker(first, self.ctx.stack, self.ctx.stack_dir), rows[:1] or [[]],
                         rollback.min_requests)
        outcome = cut_over(router, Rollout.model_validate(reveal(first["rollout"])), rollback,
                           spec.soak, progress=lambda m: progress(m))
        if outcome.error:
            return ApplyResponse(id=record, outputs=_outputs(record, router.weights),
                                 error=f"gateway '{req.resource.name}': {outcome.error}",
                                 detail=outcome.detail,
                                 failure=Failure.FAILED_BACK if outcome.rolled_back else None)
        self._set(zone, record, targets, after, drop=set(before) - set(after))
        return ApplyResponse(id=record, outputs=_outputs(record, after), detail=outcome.detail)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        zone, record = self._where(req.inputs)
        live = self._records(zone, record, full=True)
        if live:
            self.clients.get("route53").change_resource_record_sets(
                HostedZoneId=zone, ChangeBatch={"Changes": [
                    {"Action": "DELETE", "ResourceRecordSet": r} for r in live]})
        return DeleteResponse()

    # --- Route 53 -------------------------------------------------------------

    def _gateway(self, inputs: dict[str, Any]) -> Gateway:
        routes = [{k: v for k, v in r.items() if k != "backend"}
                  for r in inputs.get("routes") or []]
        spec: Gateway = self.spec({**inputs, "routes": routes})
        return spec

    def _where(self, inputs: dict[str, Any]) -> tuple[str, str]:
        options = (inputs.get("provider_options") or {}).get("aws") or {}
        zone, record = str(options["hosted_zone"]), str(options["record_name"]).rstrip(".")
        r53 = self.clients.get("route53")
        if not zone.startswith("Z"):
            found = r53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]
            named = [z for z in found if z["Name"].rstrip(".") == zone.rstrip(".")]
            if not named:
                raise ValueError(f"no Route 53 hosted zone '{zone}'")
            zone = named[0]["Id"].split("/")[-1]
        return zone, record + "."

    def _records(self, zone: str, record: str, full: bool = False) -> Any:
        sets = self.clients.get("route53").list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=record, StartRecordType="CNAME")
        mine = [r for r in sets["ResourceRecordSets"]
                if r["Name"] == record and r["Type"] == "CNAME" and "SetIdentifier" in r]
        return mine if full else {r["SetIdentifier"]: float(r["Weight"]) for r in mine}

    def _set(self, zone: str, record: str, targets: dict[str, str],
             weights: dict[str, float], drop: frozenset[str] | set[str] = frozenset()) -> None:
        changes: list[dict[str, Any]] = [
            {"Action": "UPSERT", "ResourceRecordSet": {
                "Name": record, "Type": "CNAME", "SetIdentifier": name,
                "Weight": int(round(weight)), "TTL": 60,
                "ResourceRecords": [{"Value": targets[name]}]}}
            for name, weight in weights.items()]
        live = {r["SetIdentifier"]: r for r in self._records(zone, record, full=True)}
        changes += [{"Action": "DELETE", "ResourceRecordSet": live[name]}
                    for name in drop if name in live]
        self.clients.get("route53").change_resource_record_sets(
            HostedZoneId=zone, ChangeBatch={"Changes": changes})


class _Router:
    """Weights stepped on the records; each step judged on probes to the new side."""

    def __init__(self, handler: GatewayHandler, zone: str, record: str,
                 targets: dict[str, str], before: dict[str, float], after: dict[str, float],
                 ask: Any, probe: list[Any], probes: int):
        self.handler, self.zone, self.record, self.targets = handler, zone, record, targets
        self.before, self.after, self.ask, self.probe = before, after, ask, probe
        self.probes = max(probes, 1)
        self.weights = dict(before)

    def set(self, new_percent: float) -> None:
        weights = {k: w * (100 - new_percent) / 100 for k, w in self.before.items()}
        for k, w in self.after.items():
            weights[k] = weights.get(k, 0.0) + w * new_percent / 100
        self.weights = weights
        self.handler._set(self.zone, self.record, self.targets, weights)

    def window(self, since: float) -> dict | None:
        errors, latencies = 0, []
        for _ in range(self.probes):
            started = time.perf_counter()
            try:
                self.ask(self.probe)
            except Exception:  # noqa: BLE001 - a failed probe is an error of the new side
                errors += 1
            latencies.append(1000 * (time.perf_counter() - started))
        latencies.sort()
        return {"requests": self.probes, "errors": errors, "client_errors": 0,
                "p99_ms": latencies[max(0, int(0.99 * len(latencies)) - 1)]}


def _targets(inputs: dict[str, Any] | None) -> dict[str, str]:
    return {r["backend"]["resource"]: urlparse(str(r["endpoint"])).hostname or str(r["endpoint"])
            for r in reveal(inputs or {}).get("routes") or []}


def _weights(inputs: dict[str, Any] | None) -> dict[str, float]:
    return {r["backend"]["resource"]: float(r.get("weight", 100))
            for r in reveal(inputs or {}).get("routes") or []}


def _outputs(record: str, weights: dict[str, float]) -> dict[str, Any]:
    total = sum(weights.values()) or 1.0
    return {"url": f"https://{record.rstrip('.')}",
            "weights": {k: round(100 * w / total, 2) for k, w in weights.items()}}
