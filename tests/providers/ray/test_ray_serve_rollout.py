"""A rollout on Ray Serve, step by step, against a router that answers what each case
scripts: the tables it is given, and the rollback judgement on its statistics. No
cluster: the router's HTTP routes and the Serve change are the fake's."""

from __future__ import annotations

import pytest
from mlform.engine.provider import Progress
from mlform.engine.spec.models import Rollback, Rollout
from mlform.providers.ray.serving.apps import routing
from mlform.providers.ray.serving.rollout import roll_out

OLD = {"champion": {"app": "E--champion-old", "model": "ray://models/m/1", "weight": 100,
                    "shadow": False}}
NEW = {"champion": {"app": "E--champion-new", "model": "ray://models/m/2", "weight": 100,
                    "shadow": False}}


class FakeRouter:
    """Serves each table it is given; a step's statistics are `windows[i]` (the new
    variants' total), and /health answers `health`."""

    def __init__(self, windows: list[dict | None], health: int = 200):
        self.windows = windows
        self.health_status = health
        self.served: list[dict] = []

    def serve(self, table: dict) -> float:
        self.served.append(table)
        return float(len(self.served))

    def health(self) -> tuple[int, dict]:
        return self.health_status, {"error": "variant gone"} if self.health_status != 200 else {}

    def stats(self, since: float) -> dict:
        step = int(since) - 1
        window = self.windows[min(step, len(self.windows) - 1)]
        return {"tracks": {"canary": {"total": window}} if window else {}}


def window(requests: int, errors: int = 0, p99: float = 5.0) -> dict:
    return {"requests": requests, "errors": errors, "client_errors": 0, "p99_ms": p99}


def run(router: FakeRouter, rollback: Rollback, steps=(30, 100), resume_at=None):
    clock = iter(range(10_000))
    return roll_out(router, OLD, NEW, Rollout(strategy="canary", steps=list(steps), wait="0s"),
                    rollback, Progress(), sleep=lambda s: None,
                    clock=lambda: float(next(clock)), resume_at=resume_at)


def test_every_step_passed_makes_the_new_variants_the_only_ones():
    router = FakeRouter([window(40), window(40)])
    outcome = run(router, Rollback(min_requests=20))
    assert (outcome.error, outcome.rolled_back) == (None, False)
    assert router.served == [routing(OLD, NEW, 30), routing(OLD, NEW, 100), routing(NEW)]
    assert outcome.served == routing(NEW)
    assert outcome.detail.splitlines()[0] == "canary step 30%: 40 requests, 0 errors, p99 5.0 ms"


@pytest.mark.parametrize(("windows", "rollback", "said"), [
    pytest.param([window(40, errors=8)], Rollback(min_requests=20),
                 "rolled back at canary step 30%: error rate 0.200 (8 of 40 requests) > 0.05",
                 id="error-rate"),
    pytest.param([window(40, p99=900.0)], Rollback(min_requests=20, max_p99_latency_ms=250),
                 "rolled back at canary step 30%: p99 latency 900.0 ms > 250 ms",
                 id="p99-latency"),
    pytest.param([window(3)], Rollback(min_requests=20, evidence_timeout="3s"),
                 "rolled back: canary step 30% is inconclusive: the new variants answered 3 "
                 "requests in 3s", id="too-little-evidence"),
])
def test_a_breach_puts_every_request_back_on_the_old_variants(windows, rollback, said):
    router = FakeRouter(windows)
    outcome = run(router, rollback)
    assert outcome.rolled_back
    assert outcome.error.startswith(said), outcome.error
    assert router.served == [routing(OLD, NEW, 30), routing(OLD)]
    assert outcome.served == routing(OLD)


def test_a_failing_health_check_rolls_back():
    router = FakeRouter([window(40)], health=503)
    outcome = run(router, Rollback(min_requests=20))
    assert outcome.rolled_back
    assert outcome.error == "rolled back at canary step 30%: health check failed: variant gone"


def test_too_little_evidence_with_hold_keeps_the_split_for_the_next_apply():
    router = FakeRouter([window(3)])
    outcome = run(router, Rollback(min_requests=20, evidence_timeout="3s",
                                   on_inconclusive="hold"))
    assert not outcome.rolled_back
    assert outcome.served == routing(OLD, NEW, 30)
    assert "the next apply resumes the rollout at this step" in outcome.error


def test_a_held_rollout_resumes_at_the_step_it_reached():
    router = FakeRouter([window(40)])
    outcome = run(router, Rollback(min_requests=20), steps=(10, 50, 100), resume_at=50)
    assert outcome.error is None
    assert router.served == [routing(OLD, NEW, 50), routing(OLD, NEW, 100), routing(NEW)]
