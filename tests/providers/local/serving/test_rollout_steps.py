from __future__ import annotations

import pytest
from mlform.engine.durations import seconds as parse_duration
from mlform.engine.spec.models import Rollback, Rollout
from mlform.providers.local.serving.rollout import judge, traffic_steps


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
