"""Ids, labels, machine types and traffic splits of the gcp provider: pure functions."""

from __future__ import annotations

import re

import pytest
from mlform.providers.gcp.compute import image_uri, machine_spec
from mlform.providers.gcp.config import load
from mlform.providers.gcp.naming import label_filter, label_value, labels, owned_by, vertex_id
from mlform.providers.gcp.stats import _buckets, p99
from mlform.providers.gcp.traffic import blend, percents

CFG = {"project": "my-ml-project", "region": "us-central1", "bucket": "ml-bucket"}
LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")


@pytest.mark.parametrize(("parts", "expected"), [
    (("fraud", "fraud_endpoint"), "fraud-fraud-endpoint"),
    (("9lives", "model"), "m-9lives-model"),
], ids=["underscores-become-hyphens", "a-letter-first"])
def test_vertex_ids_fit_the_id_alphabet(parts, expected):
    assert vertex_id(*parts) == expected


def test_ids_that_differ_only_by_case_or_length_stay_apart():
    assert vertex_id("Fraud", "m") != vertex_id("fraud", "m")
    long_a, long_b = vertex_id("s" * 70, "a"), vertex_id("s" * 70, "b")
    assert long_a != long_b and len(long_a) <= 63 and re.fullmatch(r"[a-z][a-z0-9-]*", long_a)


def test_labels_are_lowercase_short_and_ownership_wins():
    found = labels("Fraud_Detection", "fraud_model", "model",
                   {"Team": "Risk Ops", "mlform-stack": "someone-else"},
                   **{"mlform-fingerprint": "abc"})
    assert found["mlform-stack"] == label_value("Fraud_Detection") != "someone-else"
    assert found["mlform-resource"] == "fraud_model" and found["team"].startswith("risk-ops")
    assert all(LABEL.match(k) and LABEL.match(v) for k, v in found.items()), found
    assert owned_by(found, "Fraud_Detection", "fraud_model")
    assert not owned_by(found, "fraud_detection")  # case folded: a digest keeps them apart


def test_a_long_label_value_keeps_a_digest_of_the_whole():
    a, b = label_value("x" * 80 + "a"), label_value("x" * 80 + "b")
    assert a != b and len(a) <= 63


def test_label_filter_is_the_list_calls_syntax():
    assert label_filter(**{"mlform-stack": "fraud", "mlform-resource": "train"}) == \
        "labels.mlform-resource=train AND labels.mlform-stack=fraud"


@pytest.mark.parametrize(("kind", "compute", "options", "expected"), [
    ("training", {}, {}, {"machine_type": "n1-standard-4"}),
    ("training", {"cpus": 8, "memory_gb": 16}, {}, {"machine_type": "n1-standard-8"}),
    ("serving", {}, {}, {"machine_type": "n1-standard-2"}),
    ("training", {"gpus": 2}, {}, {"machine_type": "n1-standard-16",
                                   "accelerator_type": "NVIDIA_TESLA_T4",
                                   "accelerator_count": 2}),
    ("training", {"gpus": 1}, {"machine_type": "a2-highgpu-1g",
                               "accelerator_type": "NVIDIA_TESLA_A100"},
     {"machine_type": "a2-highgpu-1g", "accelerator_type": "NVIDIA_TESLA_A100",
      "accelerator_count": 1}),
], ids=["smallest-cpu", "fits-cpus-and-memory", "serving-starts-smaller", "gpus-get-t4s",
        "resource-options-win"])
def test_compute_maps_to_machine_specs(kind, compute, options, expected):
    assert machine_spec(load(CFG), kind, compute, options) == expected


def test_provider_machine_types_override_the_table():
    cfg = load({**CFG, "machine_types": {"training": "e2-standard-8"}})
    assert machine_spec(cfg, "training", {"cpus": 2}, {}) == {"machine_type": "e2-standard-8"}


def test_too_many_cpus_says_how_to_choose():
    with pytest.raises(ValueError, match="set provider_options.gcp.machine_type"):
        machine_spec(load(CFG), "training", {"cpus": 500}, {})


@pytest.mark.parametrize(("region", "gpu", "expected"), [
    ("us-central1", False,
     "us-docker.pkg.dev/vertex-ai/training/pytorch-cpu.2-4.py310:latest"),
    ("europe-west4", True,
     "europe-docker.pkg.dev/vertex-ai/training/pytorch-gpu.2-4.py310:latest"),
], ids=["us-cpu", "europe-gpu"])
def test_prebuilt_images_by_region(region, gpu, expected):
    assert image_uri(load({**CFG, "region": region}), "training", gpu, {}) == expected


@pytest.mark.parametrize(("weights", "expected"), [
    ({"a": 100}, {"a": 100}),
    ({"a": 3, "b": 1}, {"a": 75, "b": 25}),
    ({"a": 1, "b": 1, "c": 1}, {"a": 34, "b": 33, "c": 33}),
    ({"a": 0}, {}),
], ids=["one", "ratio", "thirds-sum-to-100", "no-traffic"])
def test_weights_become_whole_percents(weights, expected):
    assert percents(weights) == expected


def test_a_rollout_step_blends_the_old_split_into_the_new():
    assert blend({"old": 100}, {"new": 100}, 10) == {"old": 90, "new": 10}
    assert blend({"old": 100}, {"new": 100}, 100) == {"new": 100}


def test_p99_from_an_exponential_distribution():
    dist = {"count": "100", "mean": 3.0,
            "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 4, "growthFactor": 2,
                                                     "scale": 1}},
            "bucketCounts": ["0", "90", "9", "1", "0", "0"]}
    assert p99(_buckets(dist)) == 4.0
    assert p99([]) == 0.0
