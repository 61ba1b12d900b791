"""Names SageMaker accepts, instance types from portable compute, framework images."""

from __future__ import annotations

import re

import pytest
from mlform.providers.aws.compute import image_uri, instance_type
from mlform.providers.aws.config import load
from mlform.providers.aws.naming import sagemaker_name

CFG = load({"region": "eu-west-1", "role_arn": "arn:aws:iam::123456789012:role/r",
            "bucket": "bkt"})
VALID = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@pytest.mark.parametrize(("parts", "expected"), [
    (("fraud", "train", "ab12"), "fraud-train-ab12"),
    (("fraud_detection", "my.model", "ab12"), "fraud-detection-my-model-ab12"),
], ids=["plain", "invalid-characters-become-hyphens"])
def test_names_are_sagemaker_names(parts, expected):
    assert sagemaker_name(*parts) == expected


def test_long_names_keep_their_digest_and_stay_unique():
    a = sagemaker_name("s" * 40, "resource" * 5, "0123456789")
    b = sagemaker_name("s" * 40, "resourcf" * 5, "0123456789")
    assert VALID.match(a) and VALID.match(b) and a != b
    assert "0123456789" in a and len(a) <= 63


@pytest.mark.parametrize(("kind", "compute", "options", "expected"), [
    ("training", {"gpus": 0}, {}, "ml.m5.xlarge"),
    ("training", {"gpus": 1}, {}, "ml.g5.xlarge"),
    ("training", {"gpus": 4}, {}, "ml.g5.12xlarge"),
    ("training", {"cpus": 8, "memory_gb": 20}, {}, "ml.m5.2xlarge"),
    ("inference", {}, {}, "ml.m5.large"),
    ("training", {"gpus": 1}, {"instance_type": "ml.p4d.24xlarge"}, "ml.p4d.24xlarge"),
], ids=["cpu", "one-gpu", "four-gpus", "sized-by-cpus-and-memory", "inference-default",
        "resource-override"])
def test_instance_types(kind, compute, options, expected):
    assert instance_type(CFG, kind, compute, options) == expected


def test_provider_instance_type_override_applies_per_kind():
    cfg = CFG.model_copy(update={"instance_types": {"training_gpu": "ml.g6.xlarge"}})
    assert instance_type(cfg, "training", {"gpus": 1}, {}) == "ml.g6.xlarge"
    assert instance_type(cfg, "training", {"gpus": 0}, {}) == "ml.m5.xlarge"


@pytest.mark.parametrize(("region", "kind", "gpu", "expected"), [
    ("eu-west-1", "training", False,
     "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3.0-cpu-py311"),
    ("me-south-1", "inference", True,
     "217643126080.dkr.ecr.me-south-1.amazonaws.com/pytorch-inference:2.3.0-gpu-py311"),
], ids=["usual-account", "region-with-its-own-account"])
def test_framework_images(region, kind, gpu, expected):
    assert image_uri(CFG.model_copy(update={"region": region}), kind, gpu, {}) == expected


def test_image_override_from_provider_options():
    assert image_uri(CFG, "training", False, {"image_uri": "my/img:1"}) == "my/img:1"
