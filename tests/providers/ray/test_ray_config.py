"""The ray provider without a cluster: its settings as `mlform validate` reports them,
the error when the cluster is unreachable or Ray is not installed, how a job's
submission id is derived, and how `compute` lands on Ray resources."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlform.providers.ray import config as ray_config
from mlform.providers.ray.cluster import Cluster
from mlform.providers.ray.errors import RayError
from mlform.providers.ray.jobs import NO_GPU, placement, submission_id

DATA = "amount,is_fraud\n1.0,0\n2.0,1\n3.0,0\n4.0,1\n"


def write(stack_dir: Path, provider: str, resources: str = "") -> Path:
    stack_dir.mkdir(parents=True, exist_ok=True)
    (stack_dir / "rows.csv").write_text(DATA)
    (stack_dir / "mlform.yaml").write_text(
        "version: 1\nstack: demo\nproviders:\n"
        f"  gpu: {provider}\n"
        "resources:\n  data: {type: dataset, source: rows.csv}\n" + resources)
    return stack_dir


def test_validate_names_each_bad_setting_at_its_place(tmp_path, run_mlform):
    stack = write(tmp_path, '{type: ray, adress: "http://h:8265", storage: "s3://b/x"}')

    proc = run_mlform(["validate", "--no-color"], stack)

    assert proc.returncode == 1
    err = proc.stderr
    assert "error: provider 'gpu': address: required setting is missing\n" \
           "  --> mlform.yaml:4:3" in err
    assert "help: add the cluster's dashboard URL, e.g. 'address: http://ray-head:8265'" in err
    assert "error: provider 'gpu': storage: 's3://b/x' is a URI; the ray provider keeps data " \
           "on a filesystem path that the cluster's nodes and this machine share" in err
    assert "error: provider 'gpu': adress: Extra inputs are not permitted" in err
    assert "help: did you mean 'address'?" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("config", "problem"), [
    pytest.param({"storage": "/mnt/x"}, "address: required setting is missing", id="no-address"),
    pytest.param({"address": "http://h:8265"}, "storage: required setting is missing",
                 id="no-storage"),
    pytest.param({"address": "h:8265", "storage": "/x"},
                 "address: must be the dashboard's URL, scheme and host:port only",
                 id="address-without-scheme"),
    pytest.param({"address": "http://h:8265/api", "storage": "/x"},
                 "address: must be the dashboard's URL, scheme and host:port only",
                 id="address-with-path"),
    pytest.param({"address": "http://h:8265", "storage": "gs://b"},
                 "storage: 'gs://b' is a URI; the ray provider keeps data on a filesystem "
                 "path", id="uri-storage"),
    pytest.param({"address": "http://h:8265", "storage": "/x", "timeouts": {"trian": "1h"}},
                 "timeouts: unknown resource type(s) ['trian']", id="unknown-timeout"),
    pytest.param({"address": "http://h:8265", "storage": "/x", "poll_interval": 0},
                 "poll_interval: Input should be greater than 0", id="poll-interval"),
])
def test_config_problems(config, problem):
    found = [str(p) for p in ray_config.problems(config)]
    assert any(problem in p for p in found), found


def test_a_good_config_has_no_problems_and_a_relative_storage_is_the_stacks(tmp_path):
    config = {"address": "http://ray-head:8265/", "storage": "shared"}
    assert ray_config.problems(config) == []
    cfg = ray_config.load(config)
    assert cfg.address == "http://ray-head:8265"
    assert cfg.storage_root(tmp_path) == (tmp_path / "shared").resolve()
    assert cfg.storage_root(Path("/elsewhere")) == Path("/elsewhere/shared")
    assert ray_config.load({**config, "storage": "/mnt/nfs"}).storage_root(tmp_path) == \
        Path("/mnt/nfs")


def test_an_unreachable_cluster_is_an_error_in_words(tmp_path, run_mlform):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "store").mkdir()
    stack = write(tmp_path, f'{{type: ray, address: "http://127.0.0.1:{port}", '
                            'storage: store}',
                  "  t: {type: training_job, dataset: '${data.uri}', "
                  "algorithm: logistic_regression, target: is_fraud}\n")

    proc = run_mlform(["apply", "--auto-approve", "--no-color"], stack)

    assert proc.returncode == 1
    assert f"error: t failed: cannot reach the Ray cluster at http://127.0.0.1:{port} (" \
           in proc.stderr
    assert "check that the head node is running and that 'address' is its dashboard URL" \
           in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_missing_storage_mount_is_an_error_in_words(tmp_path, run_mlform):
    stack = write(tmp_path, f'{{type: ray, address: "http://127.0.0.1:1", '
                            f'storage: "{tmp_path / "not-mounted"}"}}')

    proc = run_mlform(["apply", "--auto-approve", "--no-color"], stack)

    assert proc.returncode == 1
    assert f"the shared storage {tmp_path / 'not-mounted'} does not exist on this machine: " \
           "mount the filesystem" in proc.stderr


def test_without_ray_installed_the_provider_says_which_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)  # import fails
    cluster = Cluster(ray_config.load({"address": "http://h:8265", "storage": "/x"}), tmp_path)
    with pytest.raises(RayError, match=r"pip install 'mlform\[ray\]'"):
        cluster.jobs  # noqa: B018 (the property makes the client)


@pytest.mark.parametrize(("stack", "resource", "key", "expected"), [
    pytest.param("fraud", "train", "fraud.train.0123456789abcdef",
                 "mlform-fraud-train-0123456789abcdef", id="engine-key"),
    pytest.param("my stack", "t/x", "my stack.t/x.00000000aaaaaaaa",
                 "mlform-my_stack-t_x-00000000aaaaaaaa", id="unsafe-characters"),
    pytest.param("fraud", "train", "train",  # not the engine's shape: digested whole
                 "mlform-fraud-train-" + hashlib.sha256(b"train").hexdigest()[:16],
                 id="other-key-digested"),
])
def test_submission_id_from_the_idempotency_key(stack, resource, key, expected):
    assert submission_id(stack, resource, key) == expected


def test_the_same_inputs_give_the_same_submission_id_and_other_inputs_another():
    from mlform.engine.apply.applier import idempotency_key

    inputs = {"dataset": "ray://datasets/d/abc", "algorithm": "mlp_classifier", "target": "y"}
    first = submission_id("s", "train", idempotency_key("s", "train", inputs, "salt"))
    again = submission_id("s", "train", idempotency_key("s", "train", dict(inputs), "salt"))
    other = submission_id("s", "train", idempotency_key(
        "s", "train", {**inputs, "dataset": "ray://datasets/d/def"}, "salt"))
    assert first == again != other


def compute(**fields):
    return SimpleNamespace(**{"cpus": None, "memory_gb": None, "gpus": 0, "instances": 1,
                              **fields})


@pytest.mark.parametrize(("asked", "cluster_gpus", "entrypoint", "workers", "note"), [
    pytest.param(compute(), 0.0, {"entrypoint_num_cpus": 1.0}, (1, 1.0, 0.0), "",
                 id="default-one-cpu"),
    pytest.param(compute(cpus=4, memory_gb=2, gpus=1), 2.0,
                 {"entrypoint_num_cpus": 4.0, "entrypoint_num_gpus": 1.0,
                  "entrypoint_memory": 2 * 1024 ** 3}, (1, 4.0, 1.0), "", id="gpu-present"),
    pytest.param(compute(gpus=1), 0.0, {"entrypoint_num_cpus": 1.0}, (1, 1.0, 0.0), NO_GPU,
                 id="gpu-asked-none-present"),
    pytest.param(compute(gpus=1), None, {"entrypoint_num_cpus": 1.0,
                                         "entrypoint_num_gpus": 1.0}, (1, 1.0, 1.0), "",
                 id="gpus-unknown-kept"),
    pytest.param(compute(cpus=1, instances=2), 0.0, {"entrypoint_num_cpus": 0},
                 (2, 1.0, 0.0), "", id="instances-are-train-workers"),
    pytest.param(compute(gpus=1, instances=4), 2.0, {"entrypoint_num_cpus": 0},
                 (4, 1.0, 0.0),
                 "the Ray cluster has 2 GPU(s), fewer than the 4 asked for (1 per instance): "
                 "trained on CPU", id="too-few-gpus-for-the-workers"),
])
def test_compute_maps_to_ray_resources(asked, cluster_gpus, entrypoint, workers, note):
    where = placement(asked, cluster_gpus)
    assert where.entrypoint == entrypoint
    assert (where.workers, where.worker_cpus, where.worker_gpus) == workers
    assert where.device_note == note


def test_fields_a_ray_cluster_does_not_realise_are_refused_or_noted_at_plan(tmp_path,
                                                                          run_mlform):
    stack = write(tmp_path, '{type: ray, address: "http://127.0.0.1:1", storage: "/tmp"}',
                  "  m: {type: model, artifact: 'ray://runs/t/x', retirement: {keep_last: 2}}\n"
                  "  b: {type: batch_job, model: 'ray://models/m/1', dataset: '${data.uri}',"
                  " schedule: 1h}\n"
                  "  t: {type: training_job, entrypoint: train.py, target: is_fraud,"
                  " dataset: '${data.uri}', compute: {instances: 2}}\n")
    (stack / "train.py").write_text("")

    refused = run_mlform(["validate", "--no-color"], stack)

    assert refused.returncode == 1
    assert "error: provider 'gpu' does not support 'schedule' on a batch_job" in refused.stderr
    assert "help: a ray batch job scores when an apply changes its model or data" \
        in refused.stderr
    text = (stack / "mlform.yaml").read_text()
    (stack / "mlform.yaml").write_text(text.replace(", schedule: 1h", ""))
    refused = run_mlform(["plan", "--no-color"], stack)
    assert "error: a training script runs once, in the job's entrypoint; several instances " \
           "train a built-in algorithm with Ray Train" in refused.stderr, refused.stderr
    (stack / "mlform.yaml").write_text(text.replace(", schedule: 1h", "")
                                       .replace(", compute: {instances: 2}", ""))
    noted = run_mlform(["plan", "--no-color"], stack)
    assert noted.returncode == 0, noted.stdout + noted.stderr
    assert "model.m: 'retirement' has no effect on provider 'gpu' (the ray registry keeps " \
           "every version's artifact)" in noted.stdout
