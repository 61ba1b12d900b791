"""The `gateway` resource on this machine: a reverse proxy process per gateway.

create starts the proxy (or adopts the one running) with the routes' weights; observe
reads it back (a dead proxy does not exist, so the next apply restarts it on its
port); delete stops every proxy ever started for it (`proxies`, which recognises them
by their command line) and says which. update moves traffic: when a route's endpoint changes (another
endpoint, or the same one moved to another provider or url), both sides first answer
the same rows (`mlform.ml.gateway.parity`), then the new side takes the shares of its
endpoint's rollout, judged by its rollback bounds, and all traffic goes back on a
breach (`mlform.ml.gateway.cutover`). The routing file is the gateway's state: a
cutover interrupted at any moment resumes from the weights it holds.

Files are in `<data dir>/gateways/<name>/`: `gateway.json`, `server.json`,
`requests.jsonl`, `server.log`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import (
    ApplyResponse,
    AttributeChange,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    Failure,
    ObserveRequest,
    ObserveResponse,
    Progress,
    ProviderContext,
    UpdateRequest,
    default_diff,
)
from mlform.engine.spec.models import Gateway, Parity, Rollback, Rollout
from mlform.engine.values import contains_unknown, reveal

from ..serving import process
from . import proxies
from . import routes as routing

PORT_REASON = "the proxy listens on a fixed port: changing it moves the gateway's address"


class GatewayHandler(ResourceHandler):
    rtype = "gateway"

    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx

    def _spec(self, inputs: dict[str, Any]) -> Gateway:
        """The portable model of the inputs, without the backends the engine added."""
        routes = [{k: v for k, v in r.items() if k != "backend"}
                  for r in inputs.get("routes") or []]
        spec: Gateway = self.spec({**inputs, "routes": routes})
        return spec

    def directory(self, name: str) -> Path:
        return self.ctx.data_dir / "gateways" / name

    # --- plan -----------------------------------------------------------------

    def diff(self, req: DiffRequest) -> DiffResponse:
        base = default_diff(req, replace_on=frozenset({"port"}), reasons={"port": PORT_REASON})
        desired = req.desired_inputs
        changes = _summarised(base.changes, req.prior_inputs, desired)
        planned: dict[str, Any] = {}
        prior = req.prior_outputs or {}
        if req.prior_inputs is not None and not base.requires_replace and "url" in prior:
            planned["url"] = prior["url"]
        elif isinstance(desired.get("port"), int):
            planned["url"] = _url(desired["port"])
        note = _cutover_note(req.prior_inputs, desired) if changes else ""
        return DiffResponse(changes=changes, planned_outputs=planned, note=note)

    # --- read -----------------------------------------------------------------

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        name = req.resource.name
        directory = self.directory(name)
        record = process.read_record(directory)
        if record is None:
            return ObserveResponse(exists=False, detail="no proxy was started for this gateway")
        if proxies.recorded(directory, record) is None:
            return ObserveResponse(
                exists=False,
                detail=f"the proxy (pid {record.pid}, port {record.port}) is not running; "
                       f"the next apply restarts it; the end of its log:\n"
                       f"{process.log_tail(directory)}")
        live = routing.read(directory)
        return ObserveResponse(exists=True, id=name, outputs=_outputs(record, live))

    # --- write ----------------------------------------------------------------

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        name = req.resource.name
        spec = self._spec(req.inputs)
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True)
        live = routing.read(directory)
        desired = self._routes(req.inputs)
        if live is None or not _weighted(live):
            # nothing served through it yet: the routes as written
            routing.write(directory, desired)
        record, error = self._running(name, spec, progress)
        if error:
            return ApplyResponse(error=error)
        assert record is not None
        if live is not None and _weighted(live) and set(live.backends) != set(desired.backends):
            # a restart in the middle of a cutover: what carried traffic before it, and
            # is not desired, is the old side; finish the cutover from the live weights
            prior = live.with_weights({k: w for k, w in live.weights.items()
                                       if k not in desired.backends})
            return self._move(name, spec, prior, live, desired, record, progress)
        return ApplyResponse(id=name, outputs=_outputs(record, routing.read(directory)))

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        name = req.resource.name
        spec = self._spec(req.inputs)
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True)
        prior = self._routes(req.prior_inputs)
        live = routing.read(directory)
        if live is None or not _weighted(live):
            live = prior
        routing.write(directory, live)
        record, error = self._running(name, spec, progress)
        if error:
            return ApplyResponse(error=error)
        assert record is not None
        # a migration moves the training job too: its held-out rows are read where they
        # were until the old side is deleted, after this cutover
        held_at = (req.prior_inputs.get("parity") or {}).get("holdout")
        return self._move(name, spec, prior, live, self._routes(req.inputs), record, progress,
                          held_at if isinstance(held_at, str) else None)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        """Stop every proxy started for the gateway, recorded or not, then remove its
        files; the directory stays (and the delete fails) while one still runs, so
        that the next destroy finds it again."""
        directory = self.directory(req.resource.name)
        record = process.read_record(directory)
        try:
            stopped = proxies.stop_all(directory, self.stop_timeout)
            if stopped:
                progress(f"stopped the proxy (pid {', '.join(map(str, stopped))})")
            if record is not None:
                process.wait_port_closed(record.port, self.stop_timeout)
        except TimeoutError as e:
            return DeleteResponse(error=f"gateway '{req.resource.name}': {e}")
        shutil.rmtree(directory, ignore_errors=True)
        return DeleteResponse()

    def running_proxies(self) -> list[tuple[str, str]]:
        """("gateway", id) of each proxy running under this data directory; one no record
        names (an apply killed before writing it) has an id no state holds."""
        root = self.ctx.data_dir / "gateways"
        found = []
        for directory in sorted(root.iterdir()) if root.is_dir() else ():
            record = process.read_record(directory)
            for proc in proxies.running(directory):
                found.append(("gateway", directory.name if record and proc.pid == record.pid
                              else f"{directory.name} (proxy pid {proc.pid}, never recorded)"))
        return found

    # --- the cutover ----------------------------------------------------------

    def _move(self, name: str, spec: Gateway, prior: routing.Routes, live: routing.Routes,
              desired: routing.Routes, record: process.ServerRecord,
              progress: Progress, held_before: str | None = None) -> ApplyResponse:
        """From the `prior` routes (what the state last recorded as served) to the
        `desired` ones, resuming at the `live` weights: at once when no endpoint is new,
        else parity, then the cutover."""
        from mlform.ml.gateway.cutover import cut_over

        directory = self.directory(name)
        new_keys = [k for k in desired.backends if k not in prior.backends]
        old = _settled(prior)
        if not new_keys or not old:
            routing.write(directory, desired)
            return ApplyResponse(id=name, outputs=_outputs(record, desired))
        start = sum(live.share().get(k, 0.0) for k in new_keys if k in live.backends)
        router = _Router(directory, prior, desired, new_keys, record)
        if start <= 0:
            verdict = self._parity(name, spec, prior, desired, old, new_keys, progress,
                                   held_before)
            if verdict is not None:
                routing.write(directory, prior)
                return ApplyResponse(id=name, outputs=_outputs(record, routing.read(directory)),
                                     error=f"gateway '{name}': parity failed, no traffic "
                                           f"moved: {verdict}",
                                     failure=Failure.PARITY_FAILED)
        first_new = desired.backends[new_keys[0]]
        outcome = cut_over(router, Rollout.model_validate(reveal(first_new["rollout"])),
                           Rollback.model_validate(reveal(first_new["rollback"])), spec.soak,
                           start=start, progress=lambda m: progress(m))
        if outcome.error:
            return ApplyResponse(id=name, outputs=_outputs(record, routing.read(directory)),
                                 error=f"gateway '{name}': {outcome.error}",
                                 detail=outcome.detail,
                                 failure=Failure.FAILED_BACK if outcome.rolled_back else None)
        routing.write(directory, desired)
        return ApplyResponse(id=name, outputs=_outputs(record, desired), detail=outcome.detail)

    def _parity(self, name: str, spec: Gateway, live: routing.Routes, desired: routing.Routes,
                old: list[str], new_keys: list[str], progress: Progress,
                held_before: str | None = None) -> str | None:
        """None when every new endpoint answers as the old one does; else why not."""
        from mlform.ml.gateway import parity

        condition = spec.parity
        held = parity.held_out_rows(self._readable(condition.holdout)) or \
            parity.held_out_rows(self._readable(held_before))
        logged = parity.logged_requests(self.directory(name), condition.sample)
        rows, sources = parity.sample(held, logged, condition.sample)
        reference = live.backends[max(old, key=lambda k: live.share().get(k, 0.0))]
        for key in new_keys:
            backend = desired.backends[key]
            progress(f"parity: {reference['resource']} ({reference['provider']}) and "
                     f"{backend['resource']} ({backend['provider']}) answer {len(rows)} rows")
            result = parity.check(rows, condition, sources, self._asker(live, reference),
                                  self._asker(desired, backend))
            progress(f"parity: {result.describe()}")
            if not result.ok:
                return result.describe()
        return None

    def _readable(self, location: str | None) -> str | None:
        """A `local://` location as the file it names under this provider's data."""
        if location and location.startswith("local://"):
            return str(self.ctx.data_dir / location.removeprefix("local://"))
        return location

    @staticmethod
    def _asker(routes: routing.Routes, backend: dict[str, Any]):
        from mlform.ml.gateway.sides import asker

        return asker(backend, routes.stack, Path(routes.stack_dir))

    # --- helpers --------------------------------------------------------------

    def _routes(self, inputs: dict[str, Any] | None) -> routing.Routes:
        backends: dict[str, dict[str, Any]] = {}
        weights: dict[str, float] = {}
        for route in reveal(inputs or {}).get("routes") or []:
            backend = route["backend"]
            if contains_unknown(backend):
                raise ValueError(f"the route to '{backend.get('resource')}' is not known yet")
            key = routing.key_of(backend)
            backends[key] = backend
            weights[key] = weights.get(key, 0.0) + float(route.get("weight", 100))
        return routing.Routes(self.ctx.stack, str(self.ctx.stack_dir), backends, weights)

    def _running(self, name: str, spec: Gateway,
                 progress: Progress) -> tuple[process.ServerRecord | None, str | None]:
        """The proxy's record, started (on its recorded port when it can) if not running."""
        directory = self.directory(name)
        record = process.read_record(directory)
        if record is not None and proxies.recorded(directory, record) is not None \
                and (spec.port is None or spec.port == record.port):
            others = process.stop_strays(directory, record, self.stop_timeout,
                                         proxies.PROXY_MODULE)
            if others:
                progress(f"stopped a proxy never recorded (pid {', '.join(map(str, others))})")
            return record, None
        try:
            # none or more than one would serve: exactly one runs, the one recorded
            stopped = proxies.stop_all(directory, self.stop_timeout)
        except TimeoutError as e:
            return None, f"gateway '{name}': {e}"
        if stopped:
            progress(f"stopped the proxy (pid {', '.join(map(str, stopped))})")
        ports = [spec.port] if spec.port is not None else \
            ([record.port] if record else []) + [0]
        for port in ports:
            try:
                record = process.spawn(directory, int(port), "", module=proxies.PROXY_MODULE)
                break
            except OSError as e:
                if port == ports[-1]:
                    return None, f"gateway '{name}': cannot listen on 127.0.0.1:{port}: {e}"
        assert record is not None
        progress(f"started the proxy (pid {record.pid}) on port {record.port}")
        deadline = time.monotonic() + self.start_timeout
        while True:
            if proxies.recorded(directory, record) is None:
                return None, (f"gateway '{name}': the proxy exited while starting; the end of "
                              f"its log:\n{process.log_tail(directory)}")
            try:
                if httpx.get(f"{_url(record.port)}/health", timeout=2.0).status_code == 200:
                    return record, None
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                with contextlib.suppress(TimeoutError):
                    proxies.stop_all(directory, self.stop_timeout)
                return None, (f"gateway '{name}': the proxy did not answer /health within "
                              f"{self.start_timeout:g}s:\n{process.log_tail(directory)}")
            time.sleep(0.1)


class _Router:
    """The proxy's weights as a cutover sets them: the old side's shares scaled by
    (100 - p)%, the new side's by p%, written to the routing file the proxy follows."""

    def __init__(self, directory: Path, prior: routing.Routes, desired: routing.Routes,
                 new_keys: list[str], record: process.ServerRecord):
        self.directory, self.record, self.new_keys = directory, record, new_keys
        self.backends = {**prior.backends, **desired.backends}
        self.old = _fractions(prior)
        self.new = _fractions(desired)
        self.template = prior

    def set(self, new_percent: float) -> None:
        weights = {k: round(w * (100.0 - new_percent), 4) for k, w in self.old.items()}
        for k, w in self.new.items():
            weights[k] = round(weights.get(k, 0.0) + w * new_percent, 4)
        routing.write(self.directory, self.template.with_weights(weights, self.backends))

    def window(self, since: float) -> dict | None:
        r = httpx.get(f"{_url(self.record.port)}/-/stats", params={"since": since}, timeout=5.0)
        variants = (r.json() or {}).get("variants") or {}
        seen = [variants[k] for k in self.new_keys if k in variants]
        if not seen:
            return None
        p99s = [w["p99_ms"] for w in seen if w.get("p99_ms") is not None]
        return {"requests": sum(w["requests"] for w in seen),
                "errors": sum(w["errors"] for w in seen),
                "client_errors": sum(w["client_errors"] for w in seen),
                "p99_ms": max(p99s) if p99s else None}


def _cutover_note(prior: dict[str, Any] | None, desired: dict[str, Any]) -> str:
    """What the apply will do when a route's endpoint is new (the plan's reason): the
    parity condition, the cutover steps, the soak, and when the old side may go."""
    if prior is None:
        return ""
    before = {_backend_id(r.get("backend")) for r in prior.get("routes") or []}
    notes = []
    for route in desired.get("routes") or []:
        backend = route.get("backend") or {}
        if _backend_id(backend) in before:
            continue
        try:
            steps = _steps(Rollout.model_validate(reveal(backend["rollout"])))
            rollback = Rollback.model_validate(reveal(backend["rollback"]))
        except (KeyError, ValueError, TypeError):
            steps, rollback = [100], Rollback()
        gateway = reveal(desired)
        try:
            parity = Parity.model_validate(gateway.get("parity") or {}).model_dump()
        except ValueError:
            parity = gateway.get("parity") or {}
        condition = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in parity.items() if k != "holdout" and v is not None)
        notes.append(
            f"cutover to endpoint {backend.get('resource')} (provider "
            f"'{backend.get('provider')}'): parity first ({condition}), then traffic steps "
            f"{steps} judged by its rollback (max_error_rate {rollback.max_error_rate}, "
            f"min_requests {rollback.min_requests}), soak {gateway.get('soak', '0s')}; the "
            "old endpoint keeps serving until then, and all traffic returns to it on a breach")
    return "; ".join(notes)


def _summarised(changes: list[AttributeChange], prior: dict[str, Any] | None,
                desired: dict[str, Any]) -> list[AttributeChange]:
    """Route changes as a reviewer reads them (`routes[0]: blue on local (url) 100 ->
    green on aws (known after apply) 100`) instead of the backends' whole records."""
    if prior is None or not any(c.path.split(".")[0].split("[")[0] == "routes"
                                for c in changes):
        return changes
    out = [c for c in changes if c.path.split(".")[0].split("[")[0] != "routes"]
    before, after = prior.get("routes") or [], desired.get("routes") or []
    for i in range(max(len(before), len(after))):
        old = _route_words(before[i]) if i < len(before) else None
        new = _route_words(after[i]) if i < len(after) else None
        if old != new:
            out.append(AttributeChange(f"routes[{i}]", old, new))
    return out


def _route_words(route: dict[str, Any]) -> str:
    backend = route.get("backend") or {}
    url = (backend.get("outputs") or {}).get("url")
    where = "known after apply" if contains_unknown(url) else url
    return (f"{backend.get('resource')} on {backend.get('provider')}, weight "
            f"{route.get('weight', 100)} ({where})")


def _backend_id(backend: Any) -> tuple:
    """A backend as the plan tells it: its endpoint, provider and url (unknown: new)."""
    if not isinstance(backend, dict):
        return ()
    url = (backend.get("outputs") or {}).get("url")
    return (backend.get("resource"), backend.get("provider"),
            None if contains_unknown(url) else url, contains_unknown(url))


def _settled(routes: routing.Routes) -> list[str]:
    """The backends that get traffic."""
    return [k for k, w in routes.weights.items() if w > 0 and k in routes.backends]


def _fractions(routes: routing.Routes) -> dict[str, float]:
    share = {k: v for k, v in routes.share().items() if k in routes.backends}
    total = sum(share.values()) or 1.0
    return {k: v / total for k, v in share.items()}


def _weighted(routes: routing.Routes) -> bool:
    return any(w > 0 for w in routes.weights.values())


def _steps(rollout: Rollout) -> list[int]:
    from mlform.ml.serving.judging import traffic_steps

    return traffic_steps(rollout)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _outputs(record: process.ServerRecord, routes: routing.Routes | None) -> dict[str, Any]:
    return {"url": _url(record.port), "port": record.port, "pid": record.pid,
            "weights": routes.by_resource() if routes else {}}
