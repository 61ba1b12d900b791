"""A third-party provider for the `mlform watch` tests, installed through the
`mlform.providers` entry point as a plugin would be (see `controller_stack`).

It is the null provider plus:
- a monitor tick whose evaluation takes `evaluate_seconds` (a provider option) and
  whose verdict is read from `verdict.txt` in the stack ("ok", "drift" or
  "performance"); while it evaluates, the file `evaluating` exists in the stack;
- a create or update that fails with the message in the provider option `error`,
  of the typed kind in the provider option `failure` (`gate_failed`, `rolled_back`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from mlform.engine.provider import ApplyResponse, Failure, TickResponse
from mlform.providers.null.provider import NullProvider

TYPE = "ctltest"


class ControllerTestProvider(NullProvider):
    def _knob(self, inputs, key, default=None):
        return ((inputs.get("provider_options") or {}).get(TYPE) or {}).get(key, default)

    def _failed(self, inputs) -> ApplyResponse | None:
        error = self._knob(inputs, "error")
        failure = self._knob(inputs, "failure")
        return ApplyResponse(error=error, failure=Failure(failure) if failure else None) \
            if error else None

    def create(self, req, progress):
        return self._failed(req.inputs) or super().create(req, progress)

    def update(self, req, progress):
        return self._failed(req.inputs) or super().update(req, progress)

    def tick(self, req):
        if req.resource.type != "monitor":
            return None
        stack = self.ctx.stack_dir
        marker = stack / "evaluating"
        marker.write_text(req.resource.name)
        try:
            time.sleep(float(self._knob(req.inputs, "evaluate_seconds", 0) or 0))
        finally:
            marker.unlink()
        control = stack / "verdict.txt"
        verdict = control.read_text().strip() if control.exists() else "ok"
        breaches = [] if verdict == "ok" else [verdict]
        performance = {"metric": "accuracy", "value": 0.6 if verdict == "performance" else 0.9,
                       "min": 0.8, "max": None, "passed": verdict != "performance"}
        evaluation = {"time": datetime.fromtimestamp(req.now, UTC).isoformat(timespec="seconds"),
                      "t": req.now, "verdict": verdict, "breaches": breaches,
                      "share": 0.6 if verdict == "drift" else 0.0, "performance": performance}
        breach = None
        if breaches:
            values = {"share": 0.6} if verdict == "drift" else {"accuracy": 0.6}
            breach = {"kind": verdict, "breaches": breaches, "values": values,
                      "thresholds": {"share": 0.5, "accuracy": {"min": 0.8}}}
        return TickResponse(outputs={**req.outputs, "last_evaluation": evaluation},
                            breach=breach,
                            events=[f"monitor {req.resource.name}: {verdict}"])
