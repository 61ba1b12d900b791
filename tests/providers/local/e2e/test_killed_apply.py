"""`kill -9` of `mlform apply` at the moments that matter (training, a server starting,
a rollout), each followed by an apply that converges without a second server or a
stray training run.

The cases share one stack and run in file order: each kills an apply of the change
that the previous case left behind or makes one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import (
    Traffic,
    assert_no_processes,
    health,
    mlform_ok,
    output,
    servers_of,
    training_processes,
    write_fraud_data,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPLY = ["apply", "--auto-approve", "--no-color"]


def kill_apply_at(spawn_mlform, stack_dir, line_start: str) -> list[str]:
    """Start an apply, SIGKILL it as soon as it prints a line starting with `line_start`;
    returns the lines it printed."""
    proc = spawn_mlform(APPLY, stack_dir)
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if line.startswith(line_start):
            proc.kill()
            break
    proc.wait(timeout=30)
    assert proc.returncode == -9, (f"the apply ended before printing '{line_start}':\n"
                                   + "\n".join(seen) + proc.stderr.read())
    return seen


def converge(run_mlform, stack_dir) -> None:
    """The next apply succeeds, and the plan after it is empty."""
    mlform_ok(run_mlform, APPLY, stack_dir, timeout=300)
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack_dir)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def one_server(stack_dir) -> int:
    servers = servers_of(stack_dir, "fraud_endpoint")
    assert len(servers) == 1, [p.cmdline() for p in servers]
    return servers[0].pid


def test_killed_during_training(fraud_stack_dir, run_mlform, spawn_mlform):
    kill_apply_at(spawn_mlform, fraud_stack_dir, "train: creating...")

    converge(run_mlform, fraud_stack_dir)

    assert not training_processes(fraud_stack_dir)
    runs = list((fraud_stack_dir / ".mlform/local/runs/train").iterdir())
    assert len(runs) == 1, runs
    url = output(run_mlform, fraud_stack_dir, "url")
    assert health(url)["variants"]["champion"]["model"] == "local://models/fraud_model/1"
    one_server(fraud_stack_dir)


def test_a_run_started_but_not_recorded_is_adopted(fraud_stack_dir, run_mlform,
                                                   spawn_mlform):
    """An apply killed between starting a run and recording it leaves a runner no
    status names; the next apply waits for that runner instead of training again."""
    write_fraud_data(fraud_stack_dir, seed=5)
    kill_apply_at(spawn_mlform, fraud_stack_dir, "train: training on")
    [runner] = training_processes(fraud_stack_dir)
    run_dir = Path(runner.cmdline()[-1])
    (run_dir / "status.json").unlink()

    # the retrained model rolls out as a canary, which moves only on evidence
    with Traffic(output(run_mlform, fraud_stack_dir, "url")):
        converge(run_mlform, fraud_stack_dir)

    status = json.loads((run_dir / "status.json").read_text())
    # A second run would have recorded its own pid. The first one's is recorded when the
    # apply adopts it while it runs; a run that ended first (training takes a second or
    # two) recorded its result over the status the test removed, with no pid.
    assert status["status"] == "succeeded"
    assert status.get("pid", runner.pid) == runner.pid
    assert not training_processes(fraud_stack_dir)


def test_killed_while_the_server_starts(fraud_stack_dir, run_mlform, spawn_mlform):
    mlform_ok(run_mlform, ["destroy", "--target", "fraud_endpoint", "--auto-approve",
                           "--no-color"], fraud_stack_dir)
    assert not servers_of(fraud_stack_dir, "fraud_endpoint")

    kill_apply_at(spawn_mlform, fraud_stack_dir, "fraud_endpoint: started the server")
    started = one_server(fraud_stack_dir)

    converge(run_mlform, fraud_stack_dir)

    assert one_server(fraud_stack_dir) == started  # adopted, not started twice
    # the adoption is recorded, with the outputs that depend on it, though nothing changed
    shown = json.loads(mlform_ok(run_mlform, ["show", "fraud_endpoint", "--json"],
                                 fraud_stack_dir).stdout)
    assert shown["status"] == "ready"
    url = output(run_mlform, fraud_stack_dir, "url")
    assert url == shown["outputs"]["url"]
    health(url)


def test_killed_during_a_rollout(fraud_stack_dir, run_mlform, spawn_mlform):
    url = output(run_mlform, fraud_stack_dir, "url")
    server = one_server(fraud_stack_dir)
    write_fraud_data(fraud_stack_dir, seed=2)

    with Traffic(url) as traffic:
        kill_apply_at(spawn_mlform, fraud_stack_dir, "fraud_endpoint: moving traffic")
        converge(run_mlform, fraud_stack_dir)
    assert traffic.failures == [], traffic.outcomes

    assert one_server(fraud_stack_dir) == server
    model = json.loads(mlform_ok(run_mlform, ["show", "fraud_model", "--json"],
                                 fraud_stack_dir).stdout)["outputs"]
    assert [v["version"] for v in model["versions"]] == [1, 2, 3]
    body = health(url)
    assert body["canary"] is None
    assert body["variants"]["champion"]["model"] == model["uri"] == \
        "local://models/fraud_model/3"


def test_destroy_leaves_nothing_running(fraud_stack_dir, run_mlform):
    mlform_ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], fraud_stack_dir)
    assert_no_processes(fraud_stack_dir)
