"""The cutover's steps, judging and failback, on a fake router."""

from __future__ import annotations

from mlform.engine.spec.models import Rollback, Rollout
from mlform.ml.gateway.cutover import cut_over


class FakeRouter:
    """Records every share set; answers a window per step from a script."""

    def __init__(self, windows):
        self.windows = list(windows)
        self.shares: list[float] = []

    def set(self, new_percent):
        self.shares.append(new_percent)

    def window(self, since):
        return self.windows[min(len(self.shares), len(self.windows)) - 1]


def run(router, rollout=None, rollback=None, soak="0s", start=0.0):
    return cut_over(router, rollout or Rollout(strategy="canary", steps=[10, 50, 100], wait="0s"),
                    rollback or Rollback(min_requests=5, evidence_timeout="0s"), soak,
                    start=start, progress=lambda m: None, sleep=lambda s: None)


GOOD = {"requests": 10, "errors": 0, "client_errors": 0, "p99_ms": 5.0}
BAD = {"requests": 10, "errors": 5, "client_errors": 0, "p99_ms": 5.0}


def test_every_step_judged_then_done():
    router = FakeRouter([GOOD, GOOD, GOOD])
    outcome = run(router)
    assert outcome.error is None
    assert router.shares == [10, 50, 100]


def test_a_breach_fails_back_to_the_old_side():
    router = FakeRouter([GOOD, BAD])
    outcome = run(router)
    assert outcome.rolled_back
    assert router.shares == [10, 50, 0]
    assert "failed back at cutover step 50%: error rate 0.500" in outcome.error


def test_the_soak_is_judged_too():
    router = FakeRouter([GOOD, GOOD, GOOD, BAD])
    outcome = run(router, soak="1s")
    assert router.shares == [10, 50, 100, 100, 0]
    assert "failed back at soak 1s at 100%" in outcome.error


def test_too_few_requests_fail_back_unless_held():
    assert run(FakeRouter([None])).rolled_back
    held = run(FakeRouter([None]), rollback=Rollback(min_requests=5, evidence_timeout="0s",
                                                      on_inconclusive="hold"))
    assert not held.rolled_back and held.new_percent == 10


def test_resumes_from_the_share_reached():
    router = FakeRouter([GOOD, GOOD])
    assert run(router, start=50).error is None
    assert router.shares == [100]
