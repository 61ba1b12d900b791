"""Bring your own model on aws, through the installed command against moto's server: a
scikit-learn pipeline (and an ONNX file, where onnxruntime is installed) registered from
`source:` is uploaded as an artifact, gated on every row of its dataset by the gate
evaluation Processing job (run here by `moto_processing`, with this venv as its image),
registered as a Model Package version and served over InvokeEndpoint with the
predictions of the file's own runtime; a changed file plans an update; a failing gate
registers nothing; destroy leaves nothing of the stack.

(A failing gate's evaluation, as for a trained model, stays: the model was never created,
so it is in no state that destroy reads.)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BUCKET, REGION, ROLE
from moto_processing import run_processing_jobs

pytestmark = pytest.mark.e2e

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnxruntime", "skl2onnx"))
FEATURES = ["amount", "hour", "risk"]
APPLY = ["apply", "--auto-approve", "--no-color"]
PROVIDER = """\
version: 1
stack: {stack}
providers:
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  rows:
    type: dataset
    source: data/rows.csv
"""
SERVED = """\
  sk_model:
    type: model
    source: {path: models/pipe.joblib, dataset: "${rows.uri}", target: label}
    gates:
      - metric: auc
        min: 0.6
  sk_endpoint:
    type: endpoint
    variants:
      champion: {model: "${sk_model.uri}"}
"""
ONNX = """\
  onnx_model:
    type: model
    source: {path: models/forest.onnx, dataset: "${rows.uri}", target: label}
    gates:
      - metric: accuracy
        min: 0.5
  onnx_endpoint:
    type: endpoint
    variants:
      champion: {model: "${onnx_model.uri}"}
"""
STRICT = """\
  strict_model:
    type: model
    source:
      path: models/pipe.joblib
      dataset: ${rows.uri}
      target: label
    gates:
      - metric: auc
        min: 0.999
"""


def _rows(seed: int = 5, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"amount": rng.gamma(2.0, 40.0, n).round(2),
                          "hour": rng.integers(0, 24, n), "risk": rng.random(n).round(4)})
    score = 0.02 * frame["amount"] + 3 * frame["risk"] + rng.normal(0, 0.8, n)
    frame["label"] = (score > score.median()).astype(int)
    return frame


def _fit_pipeline(frame: pd.DataFrame, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(
        frame[FEATURES], frame["label"])


def _write(directory: Path, stack: str, resources: str, url: str) -> pd.DataFrame:
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mlform.yaml").write_text(PROVIDER.format(
        stack=stack, region=REGION, role=ROLE, bucket=BUCKET, url=url) + resources)
    (directory / "data").mkdir(exist_ok=True)
    (directory / "models").mkdir(exist_ok=True)
    frame = _rows()
    frame.to_csv(directory / "data" / "rows.csv", index=False)
    joblib.dump(_fit_pipeline(frame, 1.0), directory / "models" / "pipe.joblib")
    if HAS_ONNX:
        from skl2onnx import to_onnx
        from sklearn.ensemble import RandomForestClassifier

        matrix = frame[FEATURES].to_numpy(np.float32)
        forest = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(
            matrix, frame["label"])
        onx = to_onnx(forest, matrix[:1], options={"zipmap": False})
        (directory / "models" / "forest.onnx").write_bytes(onx.SerializeToString())
    return frame


def _ok(run_mlform, args: list[str], directory: Path):
    done = run_mlform(args, directory, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _outputs(directory: Path, name: str) -> dict:
    """The outputs the provider returned (the private ones, as the file's version, too)."""
    entry = json.loads((directory / ".mlform" / "state.json").read_text())["resources"][name]
    return {**entry.get("private", {}), **entry["outputs"]}


def _leftovers(stack: str) -> list[str]:
    """What of `stack` is still in the emulated account: objects mlform put under its
    prefix, SageMaker resources named for it, processing jobs still tagged for it. (The
    traffic SageMaker's data capture wrote, under capture/, is the endpoint's record of
    its requests and stays, as on aws.)"""
    import boto3

    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    found = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"mlform/{stack}/")
             .get("Contents", []) if not o["Key"].startswith(f"mlform/{stack}/capture/")]
    for listing, key, name in [
            ("list_endpoints", "Endpoints", "EndpointName"),
            ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName"),
            ("list_models", "Models", "ModelName"),
            ("list_model_package_groups", "ModelPackageGroupSummaryList",
             "ModelPackageGroupName")]:
        found += [i[name] for i in getattr(sm, listing)()[key]
                  if i[name].startswith(f"{stack}-")]
    for job in sm.list_processing_jobs()["ProcessingJobSummaries"]:
        tags = sm.list_tags(ResourceArn=job["ProcessingJobArn"])["Tags"]
        if {"Key": "mlform:stack", "Value": stack} in tags:
            found.append(job["ProcessingJobName"])
    return found


@pytest.fixture(scope="module")
def moto_env(moto_url):
    """moto, cleaned once for this module, with credentials, the bucket, and processing
    jobs that run the gate evaluation for real."""
    import boto3
    import httpx
    import moto_extensions

    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            mp.delenv(var, raising=False)
        for var, value in (("AWS_ACCESS_KEY_ID", "testing"),
                           ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_DEFAULT_REGION", REGION), ("AWS_ENDPOINT_URL", moto_url)):
            mp.setenv(var, value)
        httpx.post(f"{moto_url}/moto-api/reset")
        moto_extensions.SCRIPT.reset()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        run_processing_jobs(mp)
        yield moto_url


@pytest.fixture(scope="module")
def served(moto_env, tmp_path_factory, run_mlform):
    directory = tmp_path_factory.mktemp("byom-aws")
    _write(directory, "byomaws", SERVED + (ONNX if HAS_ONNX else ""), moto_env)
    _ok(run_mlform, APPLY, directory)
    yield directory
    _ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], directory)
    assert _leftovers("byomaws") == []


def _invoke(directory: Path, endpoint: str, rows: list[list[float]]) -> list:
    import boto3

    name = _outputs(directory, endpoint)["name"]
    answer = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, ContentType="application/json",
        Body=json.dumps({"instances": rows}))
    return json.loads(answer["Body"].read())["predictions"]


def test_a_sklearn_pipeline_serves_what_sklearn_predicts(served):
    import joblib

    rows = pd.read_csv(served / "data" / "rows.csv")[FEATURES].head(120)
    expected = joblib.load(served / "models" / "pipe.joblib").predict(rows).tolist()
    assert _invoke(served, "sk_endpoint", rows.values.tolist()) == expected
    assert 0 < sum(expected) < len(expected)  # both classes: a real comparison


@pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime and skl2onnx are not installed")
def test_an_onnx_model_serves_what_onnxruntime_predicts(served):
    import onnxruntime

    rows = pd.read_csv(served / "data" / "rows.csv")[FEATURES].head(120)
    session = onnxruntime.InferenceSession(str(served / "models" / "forest.onnx"),
                                           providers=["CPUExecutionProvider"])
    labels = session.run(None, {session.get_inputs()[0].name: rows.to_numpy(np.float32)})[0]
    assert _invoke(served, "onnx_endpoint", rows.values.tolist()) == labels.tolist()
    assert 0 < sum(labels.tolist()) < len(labels)


def test_the_gate_is_judged_on_every_row_by_the_evaluation_job(served):
    import boto3
    import joblib
    from sklearn.metrics import roc_auc_score

    frame = pd.read_csv(served / "data" / "rows.csv")
    pipeline = joblib.load(served / "models" / "pipe.joblib")
    expected = roc_auc_score(frame["label"], pipeline.predict_proba(frame[FEATURES])[:, 1])
    outputs = _outputs(served, "sk_model")
    [gate] = outputs["gates"]
    assert gate["passed"] is True
    assert gate["measured"] == pytest.approx(expected, abs=1e-9)
    sm = boto3.client("sagemaker")
    jobs = [j["ProcessingJobName"] for j in sm.list_processing_jobs()["ProcessingJobSummaries"]
            if j["ProcessingJobName"].startswith("byomaws-sk-model-eval-")]
    assert len(jobs) == 1
    package = sm.describe_model_package(ModelPackageName=outputs["uri"])
    container = package["InferenceSpecification"]["Containers"][0]
    assert "/byomaws/imported/sk_model/" in container["ModelDataUrl"]
    assert package["ModelApprovalStatus"] == "Approved"


def test_a_new_model_file_plans_an_update(served, run_mlform):
    import joblib

    frame = pd.read_csv(served / "data" / "rows.csv")
    before = _outputs(served, "sk_model")["source"]["version"]
    assert run_mlform(["plan", "--detailed-exitcode", "--no-color"], served).returncode == 0
    joblib.dump(_fit_pipeline(frame[frame["hour"] < 12], 0.001),
                served / "models" / "pipe.joblib")
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], served)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert f"model file 'models/pipe.joblib' changed: version {before} -> " in plan.stdout
    assert "onnx_model" not in plan.stdout


def test_a_failing_gate_registers_nothing(moto_env, tmp_path, run_mlform):
    import boto3
    import joblib
    from sklearn.metrics import roc_auc_score

    frame = _write(tmp_path, "byomawsstrict", STRICT, moto_env)
    pipeline = joblib.load(tmp_path / "models" / "pipe.joblib")
    auc = roc_auc_score(frame["label"], pipeline.predict_proba(frame[FEATURES])[:, 1])
    proc = run_mlform(APPLY, tmp_path, timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert f"{auc:.4f}" in text and "0.999" in text, text
    assert "model 'strict_model' was not registered" in text
    assert "Traceback" not in text
    groups = boto3.client("sagemaker").list_model_package_groups()
    assert [g for g in groups["ModelPackageGroupSummaryList"]
            if g["ModelPackageGroupName"].startswith("byomawsstrict-")] == []
    assert [m for m in boto3.client("sagemaker").list_models()["Models"]
            if m["ModelName"].startswith("byomawsstrict-")] == []


def test_a_missing_model_file_is_a_plan_error(moto_env, tmp_path, run_mlform):
    _write(tmp_path, "byomawsmissing", STRICT.replace("models/pipe.joblib",
                                                      "models/absent.joblib"), moto_env)
    proc = run_mlform(["plan", "--no-color"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: cannot plan 'strict_model': model 'strict_model': model file " \
           "'models/absent.joblib' not found" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
