"""The slurm provider on a real single-host cluster, through the installed `mlform`
command: training, the model's gate, adoption after a killed apply, a job cancelled
behind mlform's back, and destroy. SLURM_CONF reaches the provider through the
environment the command inherits."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest_data import CSV, WAITING_SCRIPT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _stack(directory: Path, resources: str, **files: str) -> Path:
    """A stack named after its test's directory: each test's jobs have names of their own."""
    (directory / "data").mkdir(parents=True)
    (directory / "data" / "rows.csv").write_text(CSV)
    for name, text in files.items():
        (directory / name).write_text(text)
    (directory / "mlform.yaml").write_text(f"""\
version: 1
stack: {directory.parent.name[:24]}
providers:
  hpc: {{type: slurm, storage: shared, poll_seconds: 0.2}}
  local: {{}}
resources:
  data: {{type: dataset, provider: hpc, source: data/rows.csv}}
{resources}""")
    return directory


TRAINED = """\
  train:
    type: training_job
    provider: hpc
    dataset: ${data.uri}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {epochs: 2}
    compute: {cpus: 1, gpus: 1}
  model:
    type: model
    provider: hpc
    artifact: ${train.artifact}
    gates: [{metric: auc, min: 0.6}]
  scores:
    type: batch_job
    provider: hpc
    model: ${model.uri}
    dataset: ${data.uri}
  # the pairing docs/providers/slurm.md shows: the same run registered and served here
  local_model:
    type: model
    provider: local
    artifact: ${train.artifact}
    gates: [{metric: auc, min: 0.6}]
  serve:
    type: endpoint
    provider: local
    variants:
      champion: {model: "${local_model.uri}", weight: 100}
"""


def _waiting(release: Path) -> str:
    """A training job whose script waits until `release` exists: it stays RUNNING as
    long as the test needs."""
    return f"""\
  train:
    type: training_job
    provider: hpc
    dataset: ${{data.uri}}
    entrypoint: wait_then_train.py
    target: is_fraud
    hyperparameters: {{release: "{release}"}}
"""


def _state(stack: Path) -> dict:
    return json.loads((stack / ".mlform" / "state.json").read_text())["resources"]


def _jobs(cluster, name_part: str) -> list[tuple[str, str]]:
    """(id, state) of every job the controller knows whose name holds `name_part`."""
    out = cluster.run("squeue", "--noheader", "--all", "--states=all", "--format=%i|%j|%T")
    return [(i, s) for i, n, s in (line.split("|") for line in out.split()) if name_part in n]


def _until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running_job(cluster, proc, stack: Path) -> str:
    """The id of the train job once Slurm runs it, failing early if apply died first."""
    def running():
        assert proc.poll() is None, proc.communicate()
        found = [i for i, s in _jobs(cluster, _name(stack)) if s == "RUNNING"]
        return found[0] if found else None
    return _until(running, "the training job to run")


def _name(stack: Path) -> str:
    """What the train job's name starts with."""
    return f"mlform-{stack.parent.name[:24]}-train-"


def _jobs_named(cluster, job_id: str) -> str:
    return cluster.run("squeue", "--noheader", f"--jobs={job_id}", "--format=%j").strip()


def _owned(stack: Path) -> list[tuple[str, str]]:
    """The stack's jobs by their ownership comments, as the provider lists them."""
    from mlform.engine.provider import ProviderContext
    from mlform.providers.slurm import SlurmProvider

    ctx = ProviderContext(stack=stack.parent.name[:24], stack_dir=stack, provider_name="hpc",
                          config={"storage": "shared"}, data_dir=stack / ".mlform" / "hpc")
    return SlurmProvider(ctx).list_owned()


def _run_dir(stack: Path) -> Path:
    runs = list((stack / "shared" / stack.parent.name[:24] / "runs" / "train").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_a_job_trains_on_the_cluster_its_model_registers_through_its_gate_and_serves_here(
        slurm_cluster, run_mlform, tmp_path):
    stack = _stack(tmp_path / "stack", TRAINED)
    applied = run_mlform(["apply", "--auto-approve", "--no-color"], stack,
                         env=slurm_cluster.env, timeout=300)
    try:
        _check_trained(stack, applied, slurm_cluster, run_mlform, tmp_path)
    finally:  # stops the local endpoint's server
        destroyed = run_mlform(["destroy", "--auto-approve", "--no-color"], stack,
                               env=slurm_cluster.env)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr


def _check_trained(stack, applied, slurm_cluster, run_mlform, tmp_path) -> None:
    import urllib.request

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "submitted Slurm job" in applied.stdout
    state = _state(stack)
    train = state["train"]["outputs"]
    assert set(train["metrics"]) >= {"auc", "accuracy"}
    # compute.gpus reached the job as --gres=gpu:1; the node had no CUDA, and says so
    run_dir = _run_dir(stack)
    submitted = json.loads((run_dir / "submitted.json").read_text())
    assert "--gres=gpu:1" in submitted["sbatch"] and "--cpus-per-task=1" in submitted["sbatch"]
    assert train["device"] == "cpu"
    assert train["device_note"].startswith("no GPU available: trained on CPU (Slurm "
                                           "allocated 1 GPU(s)")
    outcome = json.loads((run_dir / "outcome.json").read_text())
    assert outcome["status"] == "succeeded" and outcome["node"] == slurm_cluster.node
    model = state["model"]["outputs"]
    assert model["version"] == 1 and [g["passed"] for g in model["gates"]] == [True]
    assert model["gates"][0]["measured"] == pytest.approx(train["metrics"]["auc"])
    predictions = pd.read_parquet(state["scores"]["outputs"]["output_uri"].removeprefix("file://"))
    assert len(predictions) == 60 and "prediction" in predictions.columns
    # the jobs have left squeue (MinJobAge 2s): the outcome records carry the result
    _until(lambda: not _jobs(slurm_cluster, f"mlform-{tmp_path.name[:24]}-"),
           "the jobs to leave squeue")
    # a model trained on the cluster, registered and served by the local provider
    assert state["local_model"]["outputs"]["gates"][0]["passed"]
    request = urllib.request.Request(
        state["serve"]["outputs"]["url"] + "/predict", method="POST",
        data=json.dumps({"instances": [[10.0, 30], [50.0, 45]]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert len(json.loads(answer.read())["predictions"]) == 2
    again = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack,
                       env=slurm_cluster.env)
    assert again.returncode == 0, again.stdout + again.stderr


def test_an_apply_killed_after_submission_adopts_the_running_job(
        slurm_cluster, run_mlform, spawn_mlform, tmp_path):
    release = tmp_path / "release"
    stack = _stack(tmp_path / "stack", _waiting(release), **{"wait_then_train.py": WAITING_SCRIPT})
    first = spawn_mlform(["apply", "--auto-approve", "--no-color"], stack, env=slurm_cluster.env)
    job_id = _running_job(slurm_cluster, first, stack)
    first.kill()  # SIGKILL: no chance to record anything
    first.communicate()
    release.touch()
    again = run_mlform(["apply", "--auto-approve", "--no-color"], stack,
                       env=slurm_cluster.env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "adopt" in again.stdout and "submitted Slurm job" not in again.stdout
    run_dir = _run_dir(stack)
    started = [json.loads(line) for line in (run_dir / "started.log").read_text().splitlines()]
    assert [s["job_id"] for s in started] == [job_id]  # one job ran: the first apply's
    assert json.loads((run_dir / "outcome.json").read_text())["job_id"] == job_id
    assert _state(stack)["train"]["id"] == f"{_name(stack)}{run_dir.name[:12]}"


def test_a_job_cancelled_behind_mlforms_back_is_drift(
        slurm_cluster, run_mlform, spawn_mlform, tmp_path):
    stack = _stack(tmp_path / "stack", _waiting(tmp_path / "never"),
                   **{"wait_then_train.py": WAITING_SCRIPT})
    first = spawn_mlform(["apply", "--auto-approve", "--no-color"], stack, env=slurm_cluster.env)
    job_id = _running_job(slurm_cluster, first, stack)
    first.kill()
    first.communicate()
    refreshed = run_mlform(["refresh", "--no-color"], stack, env=slurm_cluster.env)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert _state(stack)["train"]["outputs"].get("job_state") is None  # private, kept apart
    slurm_cluster.run("scancel", job_id)
    drift = run_mlform(["drift", "--no-color"], stack, env=slurm_cluster.env)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "train" in drift.stdout
    assert f"Slurm job {job_id}" in drift.stdout and "cancelled outside mlform" in drift.stdout


def test_destroy_cancels_a_running_job(slurm_cluster, run_mlform, spawn_mlform, tmp_path):
    stack = _stack(tmp_path / "stack", _waiting(tmp_path / "never"),
                   **{"wait_then_train.py": WAITING_SCRIPT})
    first = spawn_mlform(["apply", "--auto-approve", "--no-color"], stack, env=slurm_cluster.env)
    job_id = _running_job(slurm_cluster, first, stack)
    first.kill()
    first.communicate()
    name = _jobs_named(slurm_cluster, job_id)
    assert _owned(stack) == [("training_job", name)]  # what drift lists as orphans
    destroyed = run_mlform(["destroy", "--auto-approve", "--no-color"], stack,
                           env=slurm_cluster.env)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert f"cancelling Slurm job {job_id}" in destroyed.stdout
    assert _owned(stack) == []
    assert [s for i, s in _jobs(slurm_cluster, _name(stack)) if i == job_id] in \
        ([], ["CANCELLED"])
    assert not (stack / "shared" / tmp_path.name[:24] / "runs" / "train").exists()


def test_a_node_without_mlforms_interpreter_fails_the_job_saying_so(slurm_cluster, run_mlform,
                                                                      tmp_path):
    stack = _stack(tmp_path / "stack", TRAINED.split("  model:")[0])
    text = (stack / "mlform.yaml").read_text()
    (stack / "mlform.yaml").write_text(text.replace(
        "poll_seconds: 0.2", "poll_seconds: 0.2, python: /nonexistent/bin/python"))
    applied = run_mlform(["apply", "--auto-approve", "--no-color"], stack,
                         env=slurm_cluster.env, timeout=300)
    said = applied.stdout + applied.stderr
    assert applied.returncode == 1
    assert "/nonexistent/bin/python exited with status 127 without recording an outcome: " \
           f"is mlform installed at that path on node {slurm_cluster.node}?" in said, said
    assert "Traceback" not in said


CHAMPION_CSV = "amount,age,is_fraud\n" + "".join(
    f"{(i * 37) % 100},{20 + (i * 7) % 40},{int((i * 37) % 100 > 60)}\n" for i in range(80))
"""Fraud when the amount is high; `age` says nothing of it."""


def _run(name: str, features: str = "", epochs: int = 20) -> str:
    return f"""\
  {name}:
    type: training_job
    provider: hpc
    dataset: ${{data.uri}}
    algorithm: logistic_regression
    target: is_fraud
{features}    hyperparameters: {{epochs: {epochs}, lr: 0.1}}
"""


CHAMPION_RUNS = _run("weak", "    features: [age]\n") + _run("strong") + \
    _run("rival", "    features: [age]\n", epochs=10) + """\
  model:
    type: model
    provider: hpc
    artifact: ${weak.artifact}
    gates: [{metric: auc, better_than: champion, margin: 0.05}]
"""


def test_a_candidate_is_judged_against_the_champion_in_the_registry(
        slurm_cluster, run_mlform, tmp_path):
    """`better_than: champion` loads the version `aliases.json` names `champion` from the
    registry and scores it on the candidate's held-out rows: weak (age alone) registers
    with nothing to beat, strong beats it by the margin, a weak rival does not."""
    stack = _stack(tmp_path / "stack", CHAMPION_RUNS)
    (stack / "data" / "rows.csv").write_text(CHAMPION_CSV)
    spec = stack / "mlform.yaml"

    def apply(artifact: str):
        spec.write_text(re.sub(r"artifact: \$\{\w+\.", f"artifact: ${{{artifact}.",
                               spec.read_text()))
        return run_mlform(["apply", "--auto-approve", "--no-color"], stack,
                          env=slurm_cluster.env, timeout=300)

    first = apply("weak")
    assert first.returncode == 0, first.stdout + first.stderr
    state = _state(stack)
    [gate] = state["model"]["outputs"]["gates"]
    assert (gate["passed"], gate["detail"]) == (True, "no champion to compare with yet")
    weak = state["weak"]["outputs"]["metrics"]["auc"]
    strong = state["strong"]["outputs"]["metrics"]["auc"]
    rival = state["rival"]["outputs"]["metrics"]["auc"]
    assert strong > max(weak, rival) + 0.05, (strong, weak, rival)

    second = apply("strong")
    assert second.returncode == 0, second.stdout + second.stderr
    model = _state(stack)["model"]["outputs"]
    [gate] = model["gates"]
    assert (model["version"], model["aliases"], gate["passed"]) == (2, {"champion": 2}, True)
    assert (gate["measured"], gate["champion"]) == (pytest.approx(strong), pytest.approx(weak))

    refused = apply("rival")
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert f"gate 'auc >= champion + 0.05' failed: measured {rival:.4f} (champion " \
           f"(version 2) {strong:.4f}, candidate {rival:.4f})" in said, said
    assert "Traceback" not in said
    assert _state(stack)["model"]["outputs"]["version"] == 2
