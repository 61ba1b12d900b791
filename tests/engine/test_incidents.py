import json

import pytest
from click.testing import CliRunner
from mlform.engine.audit import AuditLog
from mlform.engine.cli.incidents_cmd import incidents_group
from mlform.engine.diagnostics import MlformError
from mlform.engine.incidents import IncidentError, IncidentStore


def breach(store: IncidentStore, psi: float, resources=("fraud_monitor", "fraud_endpoint")):
    return store.open("drift_breach", "drift on 3 of 5 features", list(resources),
                      measured={"drift_share": 0.6, "psi_amount": psi}, detail="window 1000")


def test_lifecycle_open_dedupe_ack_resolve(tmp_path):
    store = IncidentStore(tmp_path)
    first = breach(store, 0.31)
    assert (first.id, first.status, first.resources) == \
        ("inc-0001", "open", ("fraud_endpoint", "fraud_monitor"))
    again = breach(store, 0.35, resources=("fraud_endpoint", "fraud_monitor"))
    assert again.id == first.id
    assert again.occurrences == 2 and again.measured["psi_amount"] == 0.35
    assert [e.text for e in again.timeline] == [
        "opened: drift on 3 of 5 features: drift_share 0.6, psi_amount 0.31 (window 1000)",
        "again: drift on 3 of 5 features: drift_share 0.6, psi_amount 0.35 (window 1000)"]
    other = store.open("rollback", "canary rolled back", ["fraud_endpoint"],
                       measured={"error_rate": 0.2})
    assert other.id == "inc-0002"

    acked = store.ack(first.id, "alice", "looking at the upstream feed")
    assert (acked.status, acked.acknowledged_by) == ("acknowledged", "alice")
    assert breach(store, 0.4).id == first.id  # an acknowledged incident still collects
    store.add_timeline(first.id, "feed fixed, retraining", actor="alice")
    resolved = store.resolve(first.id, "bob", "retrained on fresh data")
    assert (resolved.status, resolved.resolved_by) == ("resolved", "bob")
    assert [(e.actor, e.text) for e in resolved.timeline] == [
        ("mlform", "opened: drift on 3 of 5 features: drift_share 0.6, psi_amount 0.31 "
                   "(window 1000)"),
        ("mlform", "again: drift on 3 of 5 features: drift_share 0.6, psi_amount 0.35 "
                   "(window 1000)"),
        ("alice", "acknowledged: looking at the upstream feed"),
        ("mlform", "again: drift on 3 of 5 features: drift_share 0.6, psi_amount 0.4 "
                   "(window 1000)"),
        ("alice", "feed fixed, retraining"),
        ("bob", "resolved: retrained on fresh data")]
    assert breach(store, 0.5).id == "inc-0003"  # a resolved incident is never reopened
    assert [i.id for i in store.list("open")] == ["inc-0002", "inc-0003"]
    assert [i.id for i in store.list("resolved")] == ["inc-0001"]
    assert store.get(first.id) == resolved  # what was written is what is read back


@pytest.mark.parametrize(("act", "message"), [
    (lambda s, i: s.ack("inc-0009"), "no incident 'inc-0009' (incidents: inc-0001)"),
    (lambda s, i: s.ack(i, "carol"), "incident inc-0001 is acknowledged; only an open "
                                     "incident can be acknowledged"),
    (lambda s, i: (s.resolve(i, "bob"), s.resolve(i, "bob")), "incident inc-0001 was "
                                                               "resolved by bob at"),
    (lambda s, i: s.open("meltdown", "x", ["a"]), "unknown incident kind 'meltdown'"),
], ids=["unknown-id", "ack-twice", "resolve-twice", "unknown-kind"])
def test_impossible_changes_are_refused(tmp_path, act, message):
    store = IncidentStore(tmp_path)
    incident = breach(store, 0.3)
    store.ack(incident.id, "alice")
    with pytest.raises(IncidentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        act(store, incident.id)


def test_files_are_private_and_plain_json(tmp_path):
    incident = breach(IncidentStore(tmp_path), 0.3)
    path = tmp_path / ".mlform" / "incidents" / f"{incident.id}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["measured"] == {"drift_share": 0.6, "psi_amount": 0.3}


def test_cli_lists_shows_acks_and_resolves_and_audits_each_change(tmp_path):
    store = IncidentStore(tmp_path)
    incident = breach(store, 0.3)
    run = CliRunner().invoke
    listed = run(incidents_group, ["list", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("inc-0001  open         drift_breach       "
                                    "fraud_endpoint, fraud_monitor: drift on 3 of 5 features")

    acked = run(incidents_group, ["ack", incident.id, str(tmp_path), "--user", "alice",
                                  "--note", "on it"])
    assert acked.output == "inc-0001 acknowledged by alice.\n"
    resolved = run(incidents_group, ["resolve", incident.id, str(tmp_path), "--user", "bob"])
    assert resolved.output == "inc-0001 resolved by bob.\n"
    assert run(incidents_group, ["list", str(tmp_path)]).output == "No unresolved incidents.\n"

    shown = run(incidents_group, ["show", incident.id, str(tmp_path)]).output
    assert "  status:    resolved\n" in shown
    assert "  acknowledged by alice at " in shown and "  resolved by bob at " in shown
    timeline = shown.split("  timeline:\n")[1].splitlines()
    assert [line.strip().split("  ", 1)[1] for line in timeline] == [
        "mlform: opened: drift on 3 of 5 features: drift_share 0.6, psi_amount 0.3 "
        "(window 1000)", "alice: acknowledged: on it", "bob: resolved"]

    entries = AuditLog(tmp_path).entries()
    assert [(e["command"], e["user"], e["result"]) for e in entries] == [
        ("incidents ack inc-0001", "alice", "ok"), ("incidents resolve inc-0001", "bob", "ok")]
    assert entries[1]["changes"] == [
        {"resource": "fraud_endpoint", "action": "resolve incident inc-0001"},
        {"resource": "fraud_monitor", "action": "resolve incident inc-0001"}]
    assert AuditLog(tmp_path).verify() == []


def test_cli_reports_an_unknown_incident_with_a_next_step(tmp_path):
    result = CliRunner().invoke(incidents_group, ["ack", "inc-0042", str(tmp_path)])
    assert isinstance(result.exception, MlformError)
    diagnostic = result.exception.diagnostics[0]
    assert (diagnostic.summary, diagnostic.help) == (
        "no incident 'inc-0042' (incidents: none yet)",
        "run 'mlform incidents list --status all' to see every incident and its status")
