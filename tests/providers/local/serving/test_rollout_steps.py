from __future__ import annotations

import pytest
from mlform.engine.durations import seconds as parse_duration
from mlform.engine.provider import Progress
from mlform.engine.spec.models import Rollback, Rollout
from mlform.providers.local.serving.config import ServingConfig, VariantSpec
from mlform.providers.local.serving.rollout import judge, roll_out, traffic_steps


@pytest.mark.parametrize("rollout, steps", [
    pytest.param({}, [100], id="all_at_once by default"),
    pytest.param({"strategy": "canary"}, [10, 50, 100], id="canary default steps"),
    pytest.param({"strategy": "canary", "steps": [5, 20]}, [5, 20, 100],
                 id="canary always ends at 100"),
    pytest.param({"strategy": "linear", "step_percent": 25}, [25, 50, 75, 100], id="linear 25"),
    pytest.param({"strategy": "linear", "step_percent": 40}, [40, 80, 100],
                 id="linear with a remainder"),
])
def test_traffic_steps(rollout: dict, steps: list[int]) -> None:
    assert traffic_steps(Rollout.model_validate(rollout)) == steps


@pytest.mark.parametrize("rollout, message", [
    pytest.param({"strategy": "canary", "steps": [50, 10]}, "must be increasing",
                 id="decreasing steps"),
    pytest.param({"strategy": "canary", "steps": [0, 50]}, "between 1 and 100", id="zero step"),
    pytest.param({"strategy": "linear", "step_percent": 0}, "between 1 and 100",
                 id="linear step of zero"),
])
def test_bad_steps_are_refused(rollout: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        traffic_steps(Rollout.model_validate(rollout))


@pytest.mark.parametrize("text, seconds", [
    ("200ms", 0.2), ("5s", 5.0), ("1.5m", 90.0), ("2h", 7200.0), ("1d", 86400.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def window(requests: int, errors: int = 0, p99_ms: float = 1.0) -> dict:
    return {"requests": requests, "errors": errors, "p99_ms": p99_ms}


@pytest.mark.parametrize("measured, rollback, breach", [
    pytest.param(window(100, errors=10), {}, "error rate 0.100 (10 of 100 requests) > 0.05",
                 id="default error bound"),
    pytest.param(window(100, errors=5), {}, None, id="at the error bound is fine"),
    pytest.param(window(50, p99_ms=212.44), {"max_p99_latency_ms": 50},
                 "p99 latency 212.4 ms > 50 ms", id="latency bound"),
    pytest.param(window(50, p99_ms=212.4), {"max_p99_latency_ms": None}, None,
                 id="no latency bound"),
    pytest.param(window(5, errors=5), {"min_requests": 10}, None,
                 id="too few requests to judge"),
    pytest.param(window(0), {"max_p99_latency_ms": 0.001}, None, id="no requests"),
    pytest.param(None, {}, None, id="no traffic on the new variants at all"),
    pytest.param(window(10, errors=9), {"max_error_rate": None}, None, id="no error bound"),
])
def test_judge(measured: dict | None, rollback: dict, breach: str | None) -> None:
    assert judge(measured, Rollback.model_validate(rollback)) == breach


# --- evidence: a step is judged only once it saw min_requests requests ---------------

class FakeServer:
    """A server whose statistics for the new variants follow `answered`: the requests
    they answered by the n-th look at the step."""

    def __init__(self, answered: list[int], errors: int = 0, client_errors: int = 0):
        self.answered = answered
        self.errors = errors
        self.client_errors = client_errors
        self.looks = 0
        self.served: list[ServingConfig] = []

    def serve(self, config: ServingConfig) -> dict:
        self.served.append(config)
        self.looks = 0
        return {}

    def health(self) -> tuple[int, dict]:
        return 200, {"status": "ok"}

    def stats(self, since: float) -> dict:
        n = self.answered[min(self.looks, len(self.answered) - 1)]
        self.looks += 1
        return {"tracks": {"canary": {"total": {
            "requests": n, "errors": min(self.errors, n), "client_errors": self.client_errors,
            "p99_ms": 1.0 if n else None}}}}


def config(model: str) -> ServingConfig:
    return ServingConfig(endpoint="ep", stable={"v": VariantSpec(model=model, path="/x")})


class Clock:
    """Time that moves only when the rollout sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, s: float) -> None:
        self.now += s

    def __call__(self) -> float:
        return self.now


def rolled(server: FakeServer, rollback: dict, current: ServingConfig | None = None):
    clock = Clock()
    outcome = roll_out(server, current or config("old"), config("new"),
                       Rollout(strategy="canary", steps=[10, 100], wait="1s"),
                       Rollback.model_validate(rollback), Progress(),
                       sleep=clock.sleep, clock=clock)
    return outcome, clock


def test_the_default_asks_for_evidence() -> None:
    assert Rollback().min_requests == 20
    assert Rollback().on_inconclusive == "rollback"


def test_a_step_without_requests_is_inconclusive_and_rolls_back() -> None:
    server = FakeServer([0])
    outcome, clock = rolled(server, {"evidence_timeout": "10s"})
    assert outcome.error == (
        "rolled back: canary step 10% is inconclusive: the new variants answered 0 requests "
        "in 10s (besides the step's wait), and rollback.min_requests asks for 20; traffic is "
        "back on the previous variants: send traffic to the endpoint while it rolls out, "
        "lower rollback.min_requests (0 promotes without evidence) or raise "
        "rollback.evidence_timeout")
    assert server.served[-1] == config("old")  # the old variants alone
    assert [c.canary_percent for c in server.served] == [10.0, 0.0]
    assert 11.0 <= clock.now <= 11.5  # the wait, then the evidence timeout
    assert outcome.served is None


def test_a_step_waits_for_late_requests_and_then_passes() -> None:
    server = FakeServer([0, 3, 12, 25])
    outcome, _ = rolled(server, {"evidence_timeout": "1m"})
    assert outcome.error is None
    assert server.served[-1] == config("new")
    assert outcome.detail.splitlines()[0] == "canary step 10%: 25 requests, 0 errors, p99 1.0 ms"


def test_hold_keeps_the_split_and_says_what_is_served() -> None:
    server = FakeServer([5])
    outcome, _ = rolled(server, {"evidence_timeout": "2s", "on_inconclusive": "hold"})
    assert outcome.error.startswith("canary step 10% is inconclusive: the new variants "
                                    "answered 5 requests in 2s")
    assert "the traffic stays split with 10% of requests on the new variants " \
           "(rollback.on_inconclusive: hold) and the next apply resumes" in outcome.error
    assert server.served == [config("old").with_canary(config("new").stable, 10)]
    assert outcome.served == server.served[-1]
    assert outcome.served.canary_percent == 10.0


def test_a_held_rollout_resumes_at_its_step() -> None:
    held = config("old").with_canary(config("new").stable, 10)
    server = FakeServer([30])
    messages: list[str] = []
    outcome = roll_out(server, held, config("new"),
                       Rollout(strategy="canary", steps=[10, 50, 100], wait="0s"),
                       Rollback(), Progress(lambda m, _f: messages.append(m)),
                       sleep=lambda _s: None)
    assert outcome.error is None
    assert [c.canary_percent for c in server.served] == [10.0, 50.0, 100.0, 0.0]
    server = FakeServer([30])
    held50 = config("old").with_canary(config("new").stable, 50)
    roll_out(server, held50, config("new"), Rollout(strategy="canary", steps=[10, 50, 100],
             wait="0s"), Rollback(), Progress(lambda m, _f: messages.append(m)),
             sleep=lambda _s: None)
    assert [c.canary_percent for c in server.served] == [50.0, 100.0, 0.0]
    assert "resuming the rollout at 50% of requests on the new variants" in messages


def test_min_requests_zero_promotes_and_says_it_had_no_evidence() -> None:
    outcome, clock = rolled(FakeServer([0]), {"min_requests": 0})
    assert outcome.error is None and not outcome.rolled_back
    assert outcome.detail.splitlines() == [
        "canary step 10%: no requests on the new variants (promoted without evidence: "
        "rollback.min_requests is 0)",
        "canary step 100%: no requests on the new variants (promoted without evidence: "
        "rollback.min_requests is 0)"]
    assert clock.now == 2.0  # no waiting for evidence


def test_client_errors_are_no_evidence_and_show_in_the_step_line() -> None:
    server = FakeServer([0], client_errors=170)
    outcome, _ = rolled(server, {"evidence_timeout": "1s"})
    assert outcome.error.startswith("rolled back: canary step 10% is inconclusive")
    assert outcome.rolled_back  # the typed kind the endpoint's incident opens from
    assert outcome.detail == ("canary step 10%: no requests on the new variants, 170 client "
                              "errors (not counted) (inconclusive: fewer than min_requests 20)")


def test_a_breach_while_waiting_for_evidence_rolls_back_at_once() -> None:
    server = FakeServer([0, 40], errors=40)
    outcome, clock = rolled(server, {"evidence_timeout": "1m"})
    assert outcome.error == ("rolled back at canary step 10%: error rate 1.000 (40 of 40 "
                             "requests) > 0.05")
    assert outcome.rolled_back
    assert clock.now < 5
