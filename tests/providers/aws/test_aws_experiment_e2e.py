"""An A/B experiment on a SageMaker endpoint, through the installed `mlform` command
against moto (whose InvokeEndpoint runs the variant's model and captures the request as
SageMaker does): requests sent with boto3, their feedback uploaded to the endpoint's
ground-truth prefix with a planted accuracy difference, then `mlform watch --once`
measures the verdict from data capture and ground truth, audits it, and promotes the
winner through the rollout; `mlform experiment` shows it, and the next plan keeps it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from conftest import BUCKET, REGION, ROLE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = """\
version: 1
stack: abx
providers:
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  model_a:
    type: model
    artifact: s3://{bucket}/abx-models/a/model.tar.gz
  model_b:
    type: model
    artifact: s3://{bucket}/abx-models/b/model.tar.gz
  scorer:
    type: endpoint
    variants:
      current: {{model: "${{model_a.uri}}", weight: 50}}
      challenger: {{model: "${{model_b.uri}}", weight: 50}}
    experiment:
      name: ranker-2026-12
      key: user_id
      control: current
      baseline: 0.75
      mde: 0.2
      promote_winner: true
outputs:
  name: {{value: "${{scorer.name}}"}}
"""
META = {"task": "classification", "features": ["amount", "age"], "target": "is_fraud",
        "classes": [0, 1], "preprocessing": {
            "amount": {"kind": "numeric", "mean": 10.0, "std": 5.0},
            "age": {"kind": "numeric", "mean": 40.0, "std": 10.0}}}
EXPERIMENT = "ranker-2026-12"


def upload_model(s3, key: str, seed: int, directory: Path) -> None:
    """A small trained-looking artifact as SageMaker keeps it (model.tar.gz)."""
    import torch
    from mlform.ml.artifact import save_model

    torch.manual_seed(seed)
    model_dir = save_model(directory, torch.nn.Linear(2, 1), META)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    s3.put_object(Bucket=BUCKET, Key=key, Body=raw.getvalue())


def ok(run_mlform, args: list[str], cwd: Path):
    done = run_mlform(args, cwd, timeout=300)
    assert done.returncode == 0, f"mlform {args}: {done.stdout}\n{done.stderr}"
    return done


def audited(stack: Path, command: str) -> list[dict]:
    lines = (stack / ".mlform" / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["command"] == command]


def test_a_planted_difference_on_sagemaker_is_decided_audited_and_promoted(
        aws, tmp_path, run_mlform, client):
    from mlform.ml.experiments.assignment import assign

    s3, runtime = client("s3"), client("sagemaker-runtime")
    upload_model(s3, "abx-models/a/model.tar.gz", 1, tmp_path / "a")
    upload_model(s3, "abx-models/b/model.tar.gz", 2, tmp_path / "b")
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "mlform.yaml").write_text(STACK.format(region=REGION, role=ROLE, bucket=BUCKET,
                                                    url=aws))
    applied = ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack).stdout
    assert "'experiment.key' has no effect on provider 'sagemaker'" in applied
    name = "abx-scorer"  # <stack>-<resource>, as the provider names SageMaker endpoints

    # A client pins a user's variant with TargetVariant, computed as the docs say.
    for user in ("u-1", "u-2", "u-3", "u-4"):
        pinned = assign(EXPERIMENT, user, {"current": 50, "challenger": 50})
        answer = runtime.invoke_endpoint(
            EndpointName=name, ContentType="application/json", TargetVariant=pinned,
            Body=json.dumps({"instances": [[5.0, 30.0]]}))
        assert answer["InvokedProductionVariant"] == pinned

    # The world's answers: the challenger is always right; the current variant is wrong
    # on every third of its requests (a planted 1.00 against 0.67).
    feedback, seen = [], {"current": 0, "challenger": 0}
    for i in range(160):
        answer = runtime.invoke_endpoint(
            EndpointName=name, ContentType="application/json", InferenceId=f"req-{i}",
            Body=json.dumps({"instances": [[float(i % 23), 20.0 + i % 50]]}))
        variant = answer["InvokedProductionVariant"]
        predicted = json.loads(answer["Body"].read())["predictions"][0]
        seen[variant] += 1
        right = variant == "challenger" or seen[variant] % 3
        feedback.append({"id": f"req-{i}", "labels": [predicted if right else 1 - predicted]})
    assert min(seen.values()) >= 49  # the horizon of baseline 0.75, mde 0.2
    for first in range(0, len(feedback), 40):
        s3.put_object(Bucket=BUCKET,
                      Key=f"mlform/abx/ground-truth/{name}/2026/12/03/21/{first:03d}.jsonl",
                      Body="\n".join(json.dumps(f) for f in feedback[first:first + 40]))

    watched = ok(run_mlform, ["watch", "--once", "--no-color"], stack).stdout
    assert f"scorer: experiment {EXPERIMENT} (accuracy): winner challenger" in watched
    assert "scorer: promoting variant 'challenger'" in watched
    assert "scorer: promoted" in watched
    decided = audited(stack, "experiment: scorer")
    assert len(decided) == 1 and decided[0]["result"] == "winner"
    assert [e["result"] for e in audited(stack, "experiment: scorer promote")] == ["ok"]
    live = client("sagemaker").describe_endpoint(EndpointName=name)
    assert {v["VariantName"]: v["CurrentWeight"] for v in live["ProductionVariants"]} == \
        {"current": 0.0, "challenger": 100.0}

    shown = ok(run_mlform, ["experiment", "--no-color"], stack).stdout
    assert f"endpoint scorer: experiment {EXPERIMENT}: winner: challenger" in shown
    assert "challenger vs current: difference +0.3" in shown
    rows = {line.split()[0]: line.split()[1:] for line in shown.splitlines()
            if line.split()[:1] in (["current"], ["challenger"]) and line.split()[1].isdigit()}
    # every captured request counted (the pinned ones too), each labelled one observed
    assert int(rows["current"][0]) + int(rows["challenger"][0]) == 164
    n = seen["current"]
    assert rows["current"][1:3] == [str(n), f"{(n - n // 3) / n:.4f}"]
    assert rows["challenger"][1:3] == [str(seen["challenger"]), "1.0000"]
    assert len(audited(stack, "experiment: scorer")) == 1  # written once
    # the verdict survives the refresh: the plan keeps the winner at 100 and wants nothing
    settled = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack)
    assert settled.returncode == 0, settled.stdout + settled.stderr
