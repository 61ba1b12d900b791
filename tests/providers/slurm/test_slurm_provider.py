"""The slurm provider without a cluster: compute to sbatch options, job names and
ownership, configuration problems, and what plan refuses or reports, through the
installed `mlform` command where a user would see it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest_data import CSV
from mlform.ml.datasets import content_version
from mlform.providers.slurm.compute import sbatch_flags
from mlform.providers.slurm.config import SlurmConfig, problems
from mlform.providers.slurm.naming import comment, job_name, owner

CFG = SlurmConfig(storage="/shared")


@pytest.mark.parametrize(("compute", "timeout", "cfg", "flags"), [
    pytest.param({}, None, CFG, [], id="nothing-asked-nothing-set"),
    pytest.param({"cpus": 4, "memory_gb": 1.5, "gpus": 2, "instances": 3}, None, CFG,
                 ["--cpus-per-task=4", "--mem=1536M", "--gres=gpu:2", "--nodes=3"],
                 id="compute-maps-to-its-options"),
    pytest.param({"gpus": 0, "instances": 1}, None, CFG, [],
                 id="defaults-add-no-options"),
    pytest.param({}, "90m", CFG.model_copy(update={"time_limit": "4:00:00"}), ["--time=90"],
                 id="the-jobs-timeout-wins-over-the-providers-time-limit"),
    pytest.param({}, "61s", CFG, ["--time=2"], id="timeout-rounds-up-to-whole-minutes"),
    pytest.param({}, None, CFG.model_copy(update={
        "time_limit": "1-00:00:00", "partition": "gpu", "account": "ml", "qos": "high",
        "sbatch_args": ["--exclusive"]}),
        ["--time=1-00:00:00", "--partition=gpu", "--account=ml", "--qos=high", "--exclusive"],
        id="provider-settings-then-its-sbatch-args"),
])
def test_compute_and_settings_become_sbatch_options(compute, timeout, cfg, flags):
    assert sbatch_flags(cfg, compute, timeout) == flags


def test_a_resources_own_sbatch_args_come_last_so_they_win():
    cfg = CFG.model_copy(update={"sbatch_args": ["--constraint=v100"]})
    assert sbatch_flags(cfg, {"cpus": 2}, None, {"sbatch_args": ["--constraint=a100"]}) == \
        ["--cpus-per-task=2", "--constraint=v100", "--constraint=a100"]


def test_job_names_carry_the_stack_the_resource_and_the_runs_digest():
    assert job_name("fraud", "train", "0123456789abcdef") == "mlform-fraud-train-0123456789ab"
    assert job_name("my stack", "tr/ain", "ab") == "mlform-my-stack-tr-ain-ab"


@pytest.mark.parametrize(("text", "found"), [
    pytest.param(comment("fraud", "train", "training_job"),
                 {"stack": "fraud", "resource": "train", "type": "training_job"},
                 id="what-the-provider-writes-reads-back"),
    pytest.param("nightly backfill", {}, id="another-users-comment"),
    pytest.param("mlform:stack=fraud", {}, id="incomplete"),
])
def test_ownership_is_read_back_from_the_comment(text, found):
    assert owner(text) == found


@pytest.mark.parametrize(("config", "said"), [
    pytest.param({}, ["storage: required setting is missing"], id="storage-is-required"),
    pytest.param({"storage": "s", "partiton": "gpu"},
                 ["partiton: extra inputs are not permitted"], id="a-misspelt-setting"),
    pytest.param({"storage": "s", "time_limit": "2 hours"},
                 ["time_limit: '2 hours' is not a Slurm time limit: write minutes ('90'), "
                  "'HH:MM:SS' or 'D-HH:MM:SS'"], id="a-time-limit-sbatch-refuses"),
    pytest.param({"storage": "s", "sbatch_args": ["--job-name=x"]},
                 ["sbatch_args: '--job-name=x': mlform sets --job-name itself (it names, "
                  "owns and places the job)"], id="an-option-mlform-owns"),
    pytest.param({"storage": "s", "time_limit": "1-12", "partition": "gpu"}, [], id="fine"),
])
def test_configuration_problems_name_the_setting(config, said):
    assert [str(p) for p in problems(config)] == said


# --- through the command ---------------------------------------------------------------

STACK = """\
version: 1
stack: mixed
providers:
  hpc: {{type: slurm, storage: shared{extra}}}
  local: {{}}
resources:
  data: {{type: dataset, provider: hpc, source: data/rows.csv}}
  train:
    type: training_job
    provider: hpc
    dataset: ${{data.uri}}
    algorithm: logistic_regression
    target: is_fraud
    compute: {{gpus: 1}}
  model:
    type: model
    provider: hpc
    artifact: ${{train.artifact}}
{more}"""


def _write(directory: Path, extra: str = "", more: str = "") -> Path:
    (directory / "data").mkdir(parents=True)
    (directory / "data" / "rows.csv").write_text(CSV)
    (directory / "mlform.yaml").write_text(STACK.format(extra=extra, more=more))
    return directory


def test_a_misspelt_setting_is_an_error_at_its_place_with_the_fix(run_mlform, tmp_path):
    stack = _write(tmp_path / "s", extra=", partiton: gpu")
    done = run_mlform(["validate", "--no-color"], stack)
    assert done.returncode == 1
    assert "mlform.yaml:4:" in done.stderr and "did you mean 'partition'?" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_an_endpoint_on_slurm_is_refused_at_its_provider_line_saying_where_to_serve(
        run_mlform, tmp_path, command):
    stack = _write(tmp_path / "s", more="""\
  serve:
    type: endpoint
    provider: hpc
    variants:
      champion: {model: "${model.uri}", weight: 100}
""")
    done = run_mlform([command, "--no-color"], stack)
    assert done.returncode == 1
    assert "error: provider 'hpc' (slurm) cannot realise an endpoint ('serve')" in done.stderr
    assert "--> mlform.yaml:21:15" in done.stderr
    assert ("help: Slurm runs batch work, not services: serve the model with a `local` or "
            "`ray` provider") in done.stderr
    assert "it realises: batch_job, dataset, model, training_job" in done.stderr


def test_a_slurm_training_job_plans_beside_a_local_endpoint(run_mlform, tmp_path):
    # The pairing docs/providers/slurm.md shows: train on the cluster, serve here.
    stack = _write(tmp_path / "s", more="""\
  serve:
    type: endpoint
    provider: local
    variants:
      champion: {model: "${model.uri}", weight: 100}
""")
    done = run_mlform(["plan", "--format", "json"], stack)
    assert done.returncode == 0, done.stdout + done.stderr
    changes = {c["name"]: c for c in json.loads(done.stdout)["changes"]}
    assert {n: (c["provider"], c["action"]) for n, c in changes.items()} == {
        "data": ("hpc", "create"), "train": ("hpc", "create"), "model": ("hpc", "create"),
        "serve": ("local", "create")}
    # the dataset's uri is known at plan (its content digest), and the run it names
    version = content_version(stack / "data" / "rows.csv")
    assert changes["train"]["after"]["dataset"] == \
        (stack / "shared" / "mixed" / "datasets" / "data" / version).as_uri()
    assert changes["model"]["after"]["artifact"] == changes["train"]["planned_outputs"]["artifact"]


def test_without_slurms_commands_apply_says_what_to_install(run_mlform, tmp_path):
    stack = _write(tmp_path / "s")
    done = run_mlform(["apply", "--auto-approve", "--no-color"], stack,
                      env={"PATH": os.path.dirname(sys.executable)})
    assert done.returncode == 1
    assert "'squeue' is not on PATH: install Slurm's client commands (Debian: " \
           "slurm-client) on this machine, or run mlform on a login node" in done.stdout + \
        done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/usr/bin/squeue"), reason="slurm-client is not installed")
def test_an_unreachable_controller_is_an_error_naming_slurm_conf(run_mlform, tmp_path):
    stack = _write(tmp_path / "s")
    conf = tmp_path / "slurm.conf"  # a controller on a port nothing listens on
    conf.write_text("ClusterName=none\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=9\n"
                    "AuthType=auth/none\nNodeName=localhost\nPartitionName=p Nodes=localhost\n")
    done = run_mlform(["apply", "--auto-approve", "--no-color"], stack,
                      env={"SLURM_CONF": str(conf)})
    said = done.stdout + done.stderr
    assert done.returncode == 1
    assert "the Slurm controller is unreachable" in said and "SLURM_CONF" in said, said
    assert "Traceback" not in said
