"""A live migration through the installed `mlform` command (issue 13): the contract's
example stack on `local` behind a local gateway, a client sending requests through the
gateway the whole time, then the `provider:` lines of the dataset, training job, model
and endpoint changed to aws (moto, whose InvokeEndpoint runs the moved model). The
dataset, job and model move; the endpoint is replaced on SageMaker; the gateway checks
parity and steps the traffic over before the local endpoint is deleted. No client
request fails, the predictions through the gateway are the same before and after, and
no local endpoint server is left.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import BUCKET, REGION, ROLE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = """\
version: 1
stack: fraud
providers:
  local: {{}}
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  transactions:
    type: dataset
    provider: {provider}
    source: data/transactions.csv
  train:
    type: training_job
    provider: {provider}
    dataset: ${{transactions.uri}}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {{epochs: 3, lr: 0.05}}
  fraud_model:
    type: model
    provider: {provider}
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: 0.5
  fraud_endpoint:
    type: endpoint
    provider: {provider}
    variants:
      champion: {{model: "${{fraud_model.uri}}"}}
    rollout: {{strategy: canary, steps: [50, 100], wait: 1s}}
    rollback: {{min_requests: 3, evidence_timeout: 60s}}
  front:
    type: gateway
    provider: local
    routes:
      - endpoint: "${{fraud_endpoint.url}}"
    parity: {{holdout: "${{train.artifact}}", sample: 40}}
outputs:
  url: {{value: "${{front.url}}"}}
"""
APPLY = ["apply", "--auto-approve", "--no-color"]
ROWS = [[250.0, 2, 0.95, 30, 12], [12.0, 14, 0.1, 45, 3], [990.0, 1, 0.99, 22, 2]]


def write(stack: Path, url: str, provider: str) -> None:
    (stack / "mlform.yaml").write_text(STACK.format(region=REGION, role=ROLE, bucket=BUCKET,
                                                    url=url, provider=provider))


def ok(run_mlform, args: list, cwd: Path, timeout: float = 400):
    proc = run_mlform(args, cwd, timeout=timeout)
    assert proc.returncode == 0, f"mlform {args} exited {proc.returncode}\n{proc.stdout}\n" \
                                 f"{proc.stderr}"
    return proc


class Traffic:
    """Prediction requests through the gateway, back to back on a thread, each answer's
    status counted (the local e2e tests' client, which this folder cannot import)."""

    def __init__(self, url: str):
        self.url, self.outcomes, self.failures = url, Counter[str](), []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=30.0) as http:
            while not self._stop.wait(0.01):
                try:
                    r = http.post(f"{self.url}/predict", json={"instances": ROWS[:1]})
                    self.outcomes[str(r.status_code)] += 1
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")


def processes_of(stack: Path) -> list[str]:
    """Command lines of live processes that name the stack's directory (servers, proxies)."""
    needle = str(stack.resolve()) + os.sep
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(needle in a for a in cmdline):
            found.append(" ".join(cmdline))
    return found


def no_processes_of(stack: Path, grace: float = 10.0) -> list[str]:
    """`processes_of(stack)` once it is empty, or after `grace` seconds: a stopped process
    group's last member can take a moment to go on a loaded machine."""
    deadline = time.monotonic() + grace
    while (left := processes_of(stack)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def predictions(url: str) -> list:
    r = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def test_a_stack_moves_to_aws_behind_its_gateway_without_a_failed_request(
        aws, tmp_path, run_mlform, client):
    from mlform.engine.scaffold import write_sample_data

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=400, seed=3)
    write(tmp_path, aws, "local")
    ok(run_mlform, APPLY, tmp_path)
    url = ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip()
    before = predictions(url)

    write(tmp_path, aws, "sagemaker")
    plan = ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout
    assert "-> model.fraud_model will be moved from 'local' to 'sagemaker'" in plan
    assert "cutover to endpoint fraud_endpoint (provider 'sagemaker'): parity first" in plan
    # The migration as one unit, in the order a reviewer reads it.
    migration = plan[plan.index("Migration:"):plan.index("Plan:")]
    parts = ["1. Copied:", "model.fraud_model: 'local' -> 'sagemaker'", "2. Created:",
             "endpoint.fraud_endpoint on 'sagemaker'", "3. Parity:",
             "on up to 40 rows: the held-out rows of parity.holdout, known after apply",
             "4. Cutover:", "5. Destroyed:",
             "endpoint.fraud_endpoint on 'local': after gateway.front's last cutover step "
             "and its soak (0s)", "6. prevent_destroy:"]
    assert [p for p in parts if p not in migration] == [], migration
    at = [migration.index(part) for part in parts]
    assert at == sorted(at), migration
    with Traffic(url) as traffic:
        applied = ok(run_mlform, APPLY, tmp_path).stdout
    assert "front: parity: 40 rows (20 held-out rows, 20 logged requests): label " \
           "agreement 1.000" in applied
    assert "front: cutover step 100%" in applied
    assert traffic.failures == [] and traffic.outcomes["200"] > 0
    assert ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip() == url
    answer = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30).json()
    assert answer == {"predictions": before, "endpoint": "fraud_endpoint"}
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert [k.split("@")[1] for k in health["weights"]] == [
        f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/"
        f"{json.loads((tmp_path / '.mlform' / 'state.json').read_text())['resources']['fraud_endpoint']['outputs']['name']}"
        "/invocations"]
    assert [p for p in processes_of(tmp_path) if "serving.server" in p] == []
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []

    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], tmp_path)
    assert no_processes_of(tmp_path) == []


KILL_SEED = 19
"""The seed of the draw of kill moments (19: the model's move, the new endpoint just
created, the cutover at 50%); a failure names it, and a run repeats it."""
PHASES = [
    [r"^transactions: ", r"^train: ", r"^fraud_model: "],       # a move under way (its copy)
    [r"^fraud_endpoint: (created|replaced) after", r"^front: parity: "],  # new endpoint up
    [r"^front: cutover step 50%: 50% of requests",               # mid-cutover, traffic split
     r"^front: cutover step 100%: 100% of requests"],            # all moved, not yet judged
]
"""Progress lines of the migration's apply by phase, in the order it prints them; the
draw picks one moment in each phase, so every phase is killed once."""


def killed_at(spawn_mlform, stack: Path, pattern: str) -> str | None:
    """Run apply and kill -9 it when a progress line matches; the line, or None when the
    apply ended first (it is then expected to have succeeded)."""
    import re
    import signal

    proc = spawn_mlform(APPLY, stack, env={"PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.match(pattern, line):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return line.strip()
    out, err = proc.communicate()
    assert proc.returncode == 0, f"apply exited {proc.returncode}\n{out}\n{err}"
    return None


def test_a_migration_killed_at_random_moments_completes_without_duplicates_or_a_failed_request(
        aws, tmp_path, run_mlform, spawn_mlform, client):
    import random

    from mlform.engine.scaffold import write_sample_data

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=400, seed=3)
    write(tmp_path, aws, "local")
    ok(run_mlform, APPLY, tmp_path)
    url = ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip()
    before = predictions(url)

    write(tmp_path, aws, "sagemaker")
    rng = random.Random(KILL_SEED)
    moments = [rng.choice(phase) for phase in PHASES]
    kills = []
    with Traffic(url) as traffic:
        for pattern in moments:
            line = killed_at(spawn_mlform, tmp_path, pattern)
            if line:
                kills.append(line)
        ok(run_mlform, APPLY, tmp_path)
    assert len(kills) == len(PHASES), f"seed {KILL_SEED}: the apply was killed only at {kills}"
    assert traffic.failures == [] and traffic.outcomes["200"] > 0, \
        f"seed {KILL_SEED}, killed at {kills}: {traffic.failures[:5]}"
    assert "No changes." in ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout

    sm = client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    assert len(sm.list_endpoints()["Endpoints"]) == 1
    [group] = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert len(sm.list_model_packages(ModelPackageGroupName=group["ModelPackageGroupName"])
               ["ModelPackageSummaryList"]) == 1
    root = tmp_path / ".mlform" / "local"
    assert sorted(str(p.relative_to(root)) for area in ("datasets", "runs", "registry")
                  for p in (root / area).rglob("*") if p.is_file()) == []
    assert [p for p in processes_of(tmp_path) if "serving.server" in p] == []
    assert predictions(url) == before
    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], tmp_path)
