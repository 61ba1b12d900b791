"""The same artifact and held-out rows give the same gate verdicts and values on local and
on aws: one run trained by the local provider, judged by the local registry, and judged
by the aws model handler, whose Processing job (moto runs none) is played in-process by
the evaluate entry of the very bundle the handler uploaded."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aws_stack import Recorder, create, dataset_inputs, training_inputs, write_data
from conftest import BUCKET
from mlform.engine.provider import CreateRequest, Progress, ProviderContext, ResourceRef
from mlform.engine.spec.models import Model
from mlform.engine.values import Secret, reveal
from mlform.providers.aws.gates import GateRunner
from moto_extensions import SCRIPT

pytestmark = pytest.mark.slow
SEED = 7
GATES = [
    {"metric": "auc", "min": 0.8},
    {"metric": "accuracy", "min": Secret(0.999)},
    {"fairness": "demographic_parity_ratio", "sensitive_column": "group", "min": 0.5},
    {"fairness": "four_fifths_rule", "sensitive_column": "group"},
    {"fairness": "equalized_odds_difference", "sensitive_column": "group", "max": 0.3},
    {"robustness": "gaussian_noise", "noise": 0.5, "robustness_metric": "log_loss",
     "max": Secret(0.5)},
]


def frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 2))
    group = rng.choice(["f", "m"], rows)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "group": group,
                         "approved": ((x[:, 0] + x[:, 1] > 0) & ((group == "m") | (x[:, 0] > 1)))
                         .astype(int)})


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> tuple[ProviderContext, str, Path]:
    """(context, artifact, run dir) of a real local training run seeded with SEED."""
    from mlform.providers.local.dataset import DatasetHandler
    from mlform.providers.local.paths import LocalPaths
    from mlform.providers.local.training.handler import TrainingJobHandler

    root = tmp_path_factory.mktemp("stack")
    ctx = ProviderContext("test", root, "local", {}, root / ".mlform" / "local")
    (root / "data").mkdir()
    frame().to_csv(root / "data" / "rows.csv", index=False)
    stored = DatasetHandler(ctx).create(CreateRequest(
        ResourceRef("rows", "dataset"), {"source": "data/rows.csv"}, "k"), Progress())
    done = TrainingJobHandler(ctx).create(CreateRequest(
        ResourceRef("train", "training_job"),
        {"dataset": stored.outputs["uri"], "algorithm": "mlp_classifier",
         "target": "approved", "seed": SEED,
         "hyperparameters": {"epochs": 5, "lr": 0.03, "hidden_layers": [8]}}, "k"),
        Progress())
    assert done.error is None, done.error
    artifact = done.outputs["artifact"]
    return ctx, artifact, LocalPaths(ctx.data_dir).resolve(artifact)


def local_results(ctx, artifact: str, run_dir: Path):
    from mlform.providers.local.registry.handler import ModelHandler

    inputs = {"artifact": artifact, "gates": GATES}
    spec = Model.model_validate({**reveal(inputs), "type": "model"})
    (results, _, _), _ = ModelHandler(ctx)._judge("m", spec, run_dir, inputs)
    return results


def play_processing_job(monkeypatch, client, run_dir: Path, work: Path) -> None:
    """After the handler starts its Processing job, run the uploaded bundle's evaluate
    entry on the run's artifact and held-out rows and put its output where the job would."""
    start = GateRunner._start

    def started(self, resource, spec, name, settings, output_key, progress,
                champion_artifact=None):
        start(self, resource, spec, name, settings, output_key, progress, champion_artifact)
        s3 = client("s3")
        [code] = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
                  if f"/code/{resource}/" in o["Key"]]
        code_dir, model_dir = work / "code", work / "model"
        body = s3.get_object(Bucket=BUCKET, Key=code)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            tar.extractall(code_dir, filter="data")
        shutil.copytree(run_dir / "artifact", model_dir)
        pd.read_parquet(run_dir / "holdout.parquet").to_csv(model_dir / "holdout.csv",
                                                            index=False)
        entry = importlib.util.spec_from_file_location("evaluate", code_dir / "evaluate.py")
        module = importlib.util.module_from_spec(entry)
        entry.loader.exec_module(module)
        shipped = json.loads((code_dir / "mlform_job.json").read_text())
        s3.put_object(Bucket=BUCKET, Key=output_key,
                      Body=json.dumps(module.evaluation(model_dir, shipped)))

    monkeypatch.setattr(GateRunner, "_start", started)


def test_local_and_aws_judge_the_same_run_alike(local_run, tmp_path, make_provider, client,
                                                monkeypatch):
    from mlform.engine.redaction import sensitive_gate_bounds

    ctx, artifact, run_dir = local_run
    local = local_results(ctx, artifact, run_dir)

    write_data(tmp_path)
    provider = make_provider()
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.5}}
    data = create(provider, "transactions", "dataset", dataset_inputs()).outputs["uri"]
    job = create(provider, "train", "training_job", training_inputs(data, seed=SEED))
    assert job.error is None, job.error
    play_processing_job(monkeypatch, client, run_dir, tmp_path / "job")
    handler = provider.handler("model")
    inputs = {"artifact": job.outputs["artifact"], "gates": GATES}
    aws = GateRunner(handler).judge("m", handler.spec(inputs), Recorder(),
                                    sensitive_gate_bounds(inputs))

    assert [r.to_dict() for r in aws] == [r.to_dict() for r in local]
    # the label depends on the group here: the parity gates fail, the others split
    assert [r.passed for r in local] == [True, False, False, False, True, True]
    assert [r.sensitive for r in local] == [(), ("min",), (), (), (), ("max",)]
    assert all(r.measured is not None for r in local)
