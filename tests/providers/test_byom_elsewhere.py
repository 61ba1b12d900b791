"""A model's `source:` (bring your own model) is registered by the local and aws providers
so far; every other provider refuses it at validate and plan, at the key, instead of
failing half-way through an apply with no artifact to register."""

from __future__ import annotations

import importlib

import pytest

PROVIDERS = ["gcp", "azure", "ray", "slurm"]


@pytest.mark.parametrize("name", PROVIDERS)
def test_each_cloud_and_cluster_provider_declares_source_unsupported(name):
    from importlib.metadata import entry_points

    [ep] = [e for e in entry_points(group="mlform.providers") if e.name == name]
    module, _, attr = ep.value.partition(":")
    provider = getattr(importlib.import_module(module), attr)
    paths = [u.path for u in provider.capabilities["model"].unsupported if not u.noop]
    assert ("source",) in paths


STACK = """
    version: 1
    stack: v
    providers:
      {provider}
    resources:
      d:
        type: dataset
        source: data/d.csv
      m:
        type: model
        source:
          path: models/m.onnx
          dataset: ${d.uri}
          target: y
    """


AWS = 'aws: {region: us-east-1, bucket: bkt, role_arn: "arn:aws:iam::123456789012:role/x"}'
GCP = "gcp: {project: my-project, region: us-central1, bucket: bkt}"


def test_validate_points_at_source_on_gcp(tmp_path, stack_writer, run_mlform):
    stack_writer(tmp_path, STACK.replace("{provider}", GCP))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("a,y\n1,0\n")
    proc = run_mlform(["validate", "--no-color"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: provider 'gcp' does not support 'source' on a model" in proc.stderr
    assert "--> mlform.yaml:11:5" in proc.stderr
    assert "implemented on the local provider so far" in proc.stderr


def test_aws_accepts_source(tmp_path, stack_writer, run_mlform):
    """aws registers a model file (tests/providers/aws/test_aws_byom_e2e.py)."""
    stack_writer(tmp_path, STACK.replace("{provider}", AWS))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("a,y\n1,0\n")
    proc = run_mlform(["validate", "--no-color"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
