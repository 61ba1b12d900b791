"""`mlform watch` as a controller, through the installed command: it holds the state lock
only for short steps (so `plan` and `apply` run while a monitor evaluates), waits out a
lock another command holds instead of exiting, exits 2 on a breach with
`--once --detailed-exitcode`, and incidents resolve themselves when what opened them
recovers or is destroyed.

The stack runs on a provider plugin (`controller_provider.py`, installed through the
`mlform.providers` entry point) whose monitor evaluation takes as long as the test says
and returns the verdict written in the stack's `verdict.txt`.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SPEC = """\
version: 1
stack: watched
providers:
  ctl: {type: ctltest}
resources:
  data:
    type: dataset
    source: data.csv
  clf:
    type: model
    artifact: "null://artifact"
    provider_options: {ctltest: {MODEL_OPTIONS}}
  serving:
    type: endpoint
    variants:
      champion: {model: "${clf.uri}", weight: 100}
    provider_options: {ctltest: {ENDPOINT_OPTIONS}}
  mon:
    type: monitor
    endpoint: ${serving.id}
    reference: ${data.uri}
    schedule: 1s
    provider_options: {ctltest: {evaluate_seconds: EVALUATE}}
  slow:
    type: dataset
    source: slow.csv
    provider_options: {ctltest: {latency: LATENCY}}
"""


@pytest.fixture
def plugin_env(tmp_path):
    """PYTHONPATH holding the test provider and the dist-info that registers it."""
    root = tmp_path / "plugin"
    info = root / "mlform_controller_test-0.dist-info"
    info.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("controller_provider.py"),
                root / "mlform_controller_test.py")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlform-controller-test\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text(
        "[mlform.providers]\nctltest = mlform_controller_test:ControllerTestProvider\n")
    return {"PYTHONPATH": str(root)}


@pytest.fixture
def stack(null_stack, run_mlform, plugin_env):
    """`stack(evaluate=0, latency=0, model='', endpoint='')`: the stack written and applied."""
    def make(evaluate: float = 0, latency: float = 0, model: str = "", endpoint: str = "",
             apply: bool = True) -> Path:
        directory = null_stack(spec(evaluate, latency, model, endpoint))
        if apply:
            ok(run_mlform(["apply", "--auto-approve"], directory, env=plugin_env))
        return directory
    return make


def spec(evaluate: float = 0, latency: float = 0, model: str = "", endpoint: str = "") -> str:
    return (SPEC.replace("EVALUATE", str(evaluate)).replace("LATENCY", str(latency))
            .replace("MODEL_OPTIONS", model).replace("ENDPOINT_OPTIONS", endpoint))


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def wait_for(predicate, seconds: float = 30, proc=None, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            out, errs = proc.communicate()
            raise AssertionError(f"watch exited {proc.returncode} before {what}\n{out}\n{errs}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc) -> tuple[str, str]:
    """Interrupt a running watch as a user would (Ctrl-C) and collect its output."""
    import signal
    import subprocess

    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    try:
        # generous: on a loaded machine a pass in flight (imports, an evaluation) can take
        # a while to reach the interrupt; once seen, a CI run had one take over 30 s
        return proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, errs = proc.communicate()
        raise AssertionError(f"watch did not stop within 90 s of Ctrl-C:\n{out[-3000:]}"
                             f"\n{errs[-3000:]}") from None


def incidents(directory: Path, run_mlform, env) -> list[dict]:
    listed = ok(run_mlform(["incidents", "list", "--status", "all", "--json"], directory,
                           env=env))
    return [json.loads(line) for line in listed.stdout.splitlines()]


# --- item 10: the lock ------------------------------------------------------------

def test_plan_and_apply_run_while_a_monitor_evaluates(stack, run_mlform, spawn_mlform,
                                                      plugin_env):
    directory = stack(evaluate=6)
    # one evaluation in the test's time: the commands below overlap it, not a later one
    watch = spawn_mlform(["watch", "--interval", "10m", "--no-color"], directory,
                         env=plugin_env)
    marker = directory / "evaluating"
    wait_for(marker.exists, proc=watch, what="the monitor's evaluation")

    planned = run_mlform(["plan", "--detailed-exitcode"], directory, env=plugin_env)
    (directory / "mlform.yaml").write_text(spec(evaluate=6, latency=0.1))
    applied = run_mlform(["apply", "--auto-approve"], directory, env=plugin_env)
    assert marker.exists(), "the evaluation ended before the commands ran; slow it down"
    assert planned.returncode == 0, planned.stderr
    assert applied.returncode == 0, applied.stderr
    assert "1 changed" in applied.stdout

    wait_for(lambda: not marker.exists(), proc=watch, what="the evaluation's end")
    # the marker goes when the evaluation ends, a moment before the pass records it
    state = directory / ".mlform" / "state.json"
    wait_for(lambda: '"verdict": "ok"' in json.dumps(json.loads(state.read_text())[
        "resources"]["mon"]), proc=watch, what="the evaluation recorded", seconds=60)
    out, _ = stop(watch)
    assert "mon: monitor mon: ok" in out
    # the watch recorded its evaluation onto the applied state, not over it
    shown = json.loads(ok(run_mlform(["show", "slow", "--json"], directory,
                                     env=plugin_env)).stdout)
    assert shown["inputs"]["provider_options"]["ctltest"]["latency"] == 0.1
    mon = json.loads(ok(run_mlform(["show", "mon", "--json"], directory,
                                   env=plugin_env)).stdout)
    assert mon["outputs"]["last_evaluation"]["verdict"] == "ok"


def test_watch_waits_for_a_lock_held_by_another_command(stack, run_mlform, spawn_mlform,
                                                       plugin_env):
    directory = stack()
    (directory / "mlform.yaml").write_text(spec(latency=4))
    holder = spawn_mlform(["apply", "--auto-approve"], directory, env=plugin_env)
    journal = directory / ".mlform" / "state.journal"
    wait_for(lambda: journal.exists() and journal.stat().st_size > 0, proc=holder,
             what="the apply taking the lock")

    watch = spawn_mlform(["watch", "--interval", "200ms", "--no-color"], directory,
                         env=plugin_env)
    assert holder.wait(timeout=60) == 0
    evaluations = directory / ".mlform"
    wait_for(lambda: '"verdict": "ok"' in json.dumps(json.loads(
        (evaluations / "state.json").read_text())["resources"]["mon"]),
        proc=watch, what="a pass after the lock was released", seconds=60)
    out, errs = stop(watch)
    assert "waiting for the state lock (ID " in out, out + errs
    assert "running 'apply'" in out and "; next try in 1s" in out
    assert "got the state lock; continuing" in out
    assert watch.returncode == 0 and "Traceback" not in errs


def test_watch_once_fails_on_a_held_lock_after_the_lock_timeout(stack, run_mlform,
                                                               spawn_mlform, plugin_env):
    directory = stack()
    (directory / "mlform.yaml").write_text(spec(latency=4))
    holder = spawn_mlform(["apply", "--auto-approve"], directory, env=plugin_env)
    journal = directory / ".mlform" / "state.journal"
    wait_for(lambda: journal.exists() and journal.stat().st_size > 0, proc=holder,
             what="the apply taking the lock")
    started = time.monotonic()
    got = run_mlform(["watch", "--once", "--lock-timeout", "500ms"], directory, env=plugin_env)
    assert time.monotonic() - started < 4
    assert got.returncode == 1
    assert got.stderr.startswith("error: the state is locked: ID "), got.stderr
    assert "help: wait for that command to finish" in got.stderr
    assert holder.wait(timeout=60) == 0


# --- item 13: exit codes, incidents --------------------------------------------------

def test_watch_once_detailed_exitcode_is_2_on_a_breach(stack, run_mlform, plugin_env):
    directory = stack()
    watch = ["watch", "--once", "--detailed-exitcode", "--no-color"]
    assert ok(run_mlform(watch, directory, env=plugin_env)).returncode == 0

    (directory / "verdict.txt").write_text("drift")
    time.sleep(1.1)  # the monitor's schedule is 1s
    got = run_mlform(watch, directory, env=plugin_env)
    assert got.returncode == 2, got.stdout + got.stderr
    assert "breach: mon" in got.stdout
    # not due again yet: the standing breach still counts
    assert run_mlform(watch, directory, env=plugin_env).returncode == 2
    # without the flag a breach is no failure, as before
    assert ok(run_mlform(["watch", "--once"], directory, env=plugin_env))

    refused = run_mlform(["watch", "--detailed-exitcode"], directory, env=plugin_env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: --detailed-exitcode needs --once\n")


def test_a_breach_incident_resolves_when_the_monitor_passes_again(stack, run_mlform,
                                                                  plugin_env):
    directory = stack()
    (directory / "verdict.txt").write_text("performance")
    ok(run_mlform(["watch", "--once"], directory, env=plugin_env))
    (opened,) = incidents(directory, run_mlform, plugin_env)
    assert (opened["kind"], opened["status"], opened["subject"]) == \
        ("performance_breach", "open", "mon")

    (directory / "verdict.txt").write_text("ok")
    time.sleep(1.1)
    watched = ok(run_mlform(["watch", "--once", "--no-color"], directory, env=plugin_env))
    assert (f"mon: incident {opened['id']} resolved: monitor 'mon' measured accuracy 0.9 "
            "within bounds at ") in watched.stdout

    (resolved,) = incidents(directory, run_mlform, plugin_env)
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "mlform")
    assert resolved["resolution"].startswith("monitor 'mon' measured accuracy 0.9 within "
                                             "bounds at ")
    assert resolved["resolution"].endswith(", in 'watch: mon'")
    assert resolved["resolved_at"]
    shown = ok(run_mlform(["incidents", "show", opened["id"]], directory, env=plugin_env))
    assert re.search(r"\n  resolved by mlform at \S+: monitor 'mon' measured accuracy 0\.9 "
                     r"within bounds at \S+, in 'watch: mon'\n", shown.stdout), shown.stdout
    assert "mlform: resolved automatically: monitor 'mon' measured" in shown.stdout
    entries = [json.loads(line) for line in
               (directory / ".mlform" / "audit.jsonl").read_text().splitlines()]
    (entry,) = [e for e in entries if e["command"] == f"watch: mon: resolve incident "
                                                     f"{opened['id']}"]
    assert entry["detail"]["automatic"] is True and entry["detail"]["resolved_by"] == "mlform"
    assert {"resource": "mon", "action": f"resolve incident {opened['id']}"} in entry["changes"]
    assert ok(run_mlform(["audit", "verify"], directory, env=plugin_env))


def test_gate_and_rollback_incidents_resolve_when_a_later_apply_succeeds(
        stack, run_mlform, plugin_env):
    directory = stack(apply=False, model="error: \"gate 'auc >= 0.99' failed: measured 0.8\", "
                                         "failure: gate_failed")
    failed = run_mlform(["apply", "--auto-approve"], directory, env=plugin_env)
    assert failed.returncode == 1
    (gate,) = incidents(directory, run_mlform, plugin_env)
    assert (gate["kind"], gate["subject"]) == ("gate_failed", "clf")

    (directory / "mlform.yaml").write_text(spec(
        endpoint="error: \"rolled back at canary step 10%: error rate 0.5 > 0.1\", "
                 "failure: rolled_back"))
    failed = run_mlform(["apply", "--auto-approve"], directory, env=plugin_env)
    assert failed.returncode == 1
    assert f"incident {gate['id']} resolved: model 'clf' passed its gates and was " \
           "registered (create), in 'apply'" in failed.stderr
    rollback = next(i for i in incidents(directory, run_mlform, plugin_env)
                    if i["kind"] == "rollback")
    assert (rollback["status"], rollback["subject"]) == ("open", "serving")

    (directory / "mlform.yaml").write_text(spec())
    fixed = ok(run_mlform(["apply", "--auto-approve"], directory, env=plugin_env))
    assert f"incident {rollback['id']} resolved: endpoint 'serving' rolled out (create)" \
        in fixed.stderr
    assert [i["status"] for i in incidents(directory, run_mlform, plugin_env)] == \
        ["resolved", "resolved"]


def test_an_apply_failure_of_no_typed_kind_opens_no_incident(stack, run_mlform, plugin_env):
    # The words "gate" and "rolled back" are no kind: only ApplyResponse.failure opens one.
    directory = stack(apply=False, model="error: \"gate check could not run: disk full\"",
                      endpoint="error: \"rolled back by hand\"")
    failed = run_mlform(["apply", "--auto-approve"], directory, env=plugin_env)
    assert failed.returncode == 1
    assert "gate check could not run: disk full" in failed.stderr
    assert "incident" not in failed.stderr
    assert incidents(directory, run_mlform, plugin_env) == []


def test_incidents_resolve_when_their_resource_is_destroyed(stack, run_mlform, plugin_env):
    directory = stack()
    (directory / "verdict.txt").write_text("drift")
    ok(run_mlform(["watch", "--once"], directory, env=plugin_env))
    (opened,) = incidents(directory, run_mlform, plugin_env)
    assert opened["kind"] == "drift_breach"

    destroyed = ok(run_mlform(["destroy", "--auto-approve"], directory, env=plugin_env))
    assert f"incident {opened['id']} resolved: monitor 'mon' was destroyed, in 'destroy'" \
        in destroyed.stderr
    (resolved,) = incidents(directory, run_mlform, plugin_env)
    assert resolved["status"] == "resolved"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_drift_reports_open_incidents_in_every_format(stack, run_mlform, plugin_env, fmt):
    directory = stack()
    (directory / "verdict.txt").write_text("drift")
    ok(run_mlform(["watch", "--once"], directory, env=plugin_env))

    report = run_mlform(["drift", "--format", fmt], directory, env=plugin_env)
    assert report.returncode == 0, report.stdout + report.stderr  # no drift, one incident
    expected = {
        "text": "incident inc-0001 (drift_breach, open): mon: drift breach\n",
        "markdown": "| `inc-0001` | drift_breach | open | `mon`, `serving` | mon: drift breach |",
        "html": "<code>inc-0001</code> mon: drift breach <span class='kind'>drift_breach, "
                "open</span>",
        "json": '"title": "mon: drift breach"',
    }[fmt]
    assert expected in report.stdout, report.stdout
