"""Retraining-policy decisions as a pure function of what the controller observed:
each case says which trigger, cooldown or action rule it exercises."""

from __future__ import annotations

import pytest
from mlform.ml.retraining import DataVersion, Observed, decide, parse_policy

NOW = 1_000_000.0
HOUR = 3600.0
MONITOR = [{"monitor": "fraud_monitor"}]
NEW_DATA = [{"new_data": "transactions"}]


def policy(triggers, **more):
    return parse_policy({"training_job": "train", "triggers": triggers, "cooldown": "1h",
                         **more})


def evaluation(verdict: str, t: float, breaches=None) -> dict:
    breaches = [verdict] if breaches is None and verdict in ("drift", "performance") \
        else breaches or []
    return {"time": f"t{t:.0f}", "t": t, "verdict": verdict, "breaches": breaches,
            "drifted_features": ["amount"]}


def last_action(t: float, data: dict | None = None) -> dict:
    return {"t": t, "time": f"t{t:.0f}", "action": "retrain", "reason": "earlier",
            "training_job": "train", "data": data or {}}


# (triggers, the monitor's last evaluation, the policy's last action, created_at,
#  retrain reason expected: None when it must not act)
CASES = [
    pytest.param(MONITOR, evaluation("drift", NOW - 60), None, NOW - HOUR,
                 "monitor fraud_monitor found drift at t999940 (amount)",
                 id="monitor: drift never acted on retrains"),
    pytest.param(MONITOR, evaluation("drift", NOW - 2 * HOUR), last_action(NOW - HOUR),
                 NOW - 3 * HOUR, None, id="monitor: drift older than the last retrain waits"),
    pytest.param(MONITOR, evaluation("drift", NOW - 60), last_action(NOW - 2 * HOUR),
                 NOW - 3 * HOUR, "monitor fraud_monitor found drift at t999940 (amount)",
                 id="monitor: drift newer than the last retrain retrains"),
    pytest.param(MONITOR, evaluation("ok", NOW - 60), None, NOW - HOUR, None,
                 id="monitor: ok does not retrain"),
    pytest.param(MONITOR, evaluation("insufficient_data", NOW - 60), None, NOW - HOUR, None,
                 id="monitor: too little data does not retrain"),
    pytest.param(MONITOR, None, None, NOW - HOUR, None, id="monitor: not evaluated yet"),
    pytest.param([{"monitor": "fraud_monitor", "on": "performance"}],
                 evaluation("drift", NOW - 60), None, NOW - HOUR, None,
                 id="monitor: drift does not answer on=performance"),
    pytest.param([{"monitor": "fraud_monitor", "on": "performance"}],
                 evaluation("performance", NOW - 60, ["drift", "performance"]), None,
                 NOW - HOUR, "monitor fraud_monitor found performance at t999940",
                 id="monitor: a performance breach answers on=performance"),
    pytest.param([{"schedule": "1d"}], None, None, NOW - 25 * HOUR,
                 "schedule 1d: last retrain 1970-01-11T12:46:40+00:00",
                 id="schedule: a day since creation retrains"),
    pytest.param([{"schedule": "1d"}], None, None, NOW - 23 * HOUR, None,
                 id="schedule: under a day since creation waits"),
    pytest.param([{"schedule": "1d"}], None, last_action(NOW - 2 * HOUR), NOW - 30 * HOUR,
                 None, id="schedule: counts from the last retrain"),
    pytest.param([{"schedule": "1s"}, *MONITOR], evaluation("drift", NOW - 60), None,
                 NOW - HOUR, "schedule 1s: last retrain 1970-01-12T12:46:40+00:00; monitor "
                 "fraud_monitor found drift at t999940 (amount)",
                 id="two triggers firing: both reasons, in the policy's order"),
]


@pytest.mark.parametrize(("triggers", "monitor", "last", "created_at", "reason"), CASES)
def test_triggers(triggers, monitor, last, created_at, reason):
    seen = Observed(now=NOW, created_at=created_at, last_action=last,
                    evaluations={"fraud_monitor": monitor})
    decision = decide("retrain_on_drift", policy(triggers), seen)
    assert decision.retrain == reason
    assert decision.acted is (reason is not None)
    if reason is not None:
        assert decision.last_action["t"] == NOW
        assert decision.last_action["reason"] == reason
        assert decision.record["reasons"] == reason.split("; ")


CURRENT = "aaaaaaaaaaaa"


@pytest.mark.parametrize(("data", "acted_on", "check", "fires"), [
    pytest.param(DataVersion("read", "d.csv", CURRENT, CURRENT), None,
                 f"new data in transactions: unchanged ({CURRENT})", False,
                 id="source unchanged since apply"),
    pytest.param(DataVersion("read", "d.csv", "0123456789ab", CURRENT), None,
                 f"new data in transactions: 'd.csv' is {CURRENT}, state has 0123456789ab",
                 True, id="source changed since apply"),
    pytest.param(DataVersion("read", "d.csv", "0123456789ab", CURRENT), CURRENT,
                 f"new data in transactions: {CURRENT} already acted on", False,
                 id="change already acted on"),
    pytest.param(DataVersion("remote", "s3://b/d.csv", "0123456789ab"), None,
                 "new data in transactions: 's3://b/d.csv' is remote, its changes show in "
                 "`mlform plan`", False, id="remote source left to plan"),
    pytest.param(DataVersion("missing", "d.csv", "0123456789ab"), None,
                 "new data in transactions: source 'd.csv' is missing", False,
                 id="missing source"),
    pytest.param(DataVersion("not_applied"), None,
                 "new data in transactions: the dataset is not applied yet", False,
                 id="dataset not applied"),
])
def test_new_data(data, acted_on, check, fires):
    last = last_action(NOW - 2 * HOUR, {"transactions": acted_on}) if acted_on else None
    decision = decide("p", policy(NEW_DATA),
                      Observed(now=NOW, created_at=NOW - HOUR, last_action=last,
                               data={"transactions": data}))
    assert decision.record["checks"] == [check]
    assert decision.acted is fires
    if fires:
        assert decision.last_action["data"] == {"transactions": CURRENT}


@pytest.mark.parametrize(("since_last", "acts"), [
    pytest.param(10 * 60, False, id="ten minutes after a retrain the cooldown holds"),
    pytest.param(HOUR, True, id="an hour after a retrain the cooldown is over"),
])
def test_cooldown(since_last, acts):
    decision = decide("retrain_on_drift", policy(MONITOR), Observed(
        now=NOW, created_at=NOW - 5 * HOUR, last_action=last_action(NOW - since_last),
        evaluations={"fraud_monitor": evaluation("drift", NOW - 60)}))
    assert decision.acted is acts and (decision.retrain is not None) is acts
    assert decision.record["acted"] is acts
    assert (decision.record["held_by_cooldown_until"] is None) is acts
    if not acts:
        assert decision.events == (
            "policy retrain_on_drift: monitor fraud_monitor found drift at t999940 (amount); "
            "held back by the cooldown of 1h until 1970-01-12T14:36:40+00:00",)


def test_record_only_records_and_reports_without_retraining():
    decision = decide("retrain_on_drift", policy(MONITOR, action="record_only"), Observed(
        now=NOW, created_at=NOW - HOUR,
        evaluations={"fraud_monitor": evaluation("drift", NOW - 60)}))
    assert decision.retrain is None and decision.acted
    assert decision.last_action["action"] == "record_only"
    assert decision.events == ("policy retrain_on_drift: would retrain 'train' (record_only): "
                               "monitor fraud_monitor found drift at t999940 (amount)",)


def test_a_new_action_keeps_what_earlier_actions_acted_on():
    decision = decide("p", policy([*NEW_DATA, {"new_data": "labels"}]), Observed(
        now=NOW, created_at=NOW - HOUR,
        last_action=last_action(NOW - 2 * HOUR, {"labels": "bbbbbbbbbbbb"}),
        data={"transactions": DataVersion("read", "d.csv", "0123456789ab", CURRENT),
              "labels": DataVersion("read", "l.csv", "bbbbbbbbbbbb", "bbbbbbbbbbbb")}))
    assert decision.last_action["data"] == {"labels": "bbbbbbbbbbbb", "transactions": CURRENT}


def test_a_trigger_of_two_kinds_is_refused():
    with pytest.raises(ValueError, match="a trigger has exactly one of 'monitor', 'schedule' "
                                         "or 'new_data'"):
        parse_policy({"training_job": "train", "triggers": [{"monitor": "m", "schedule": "1h"}]})
