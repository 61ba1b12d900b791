"""The portable bundle a move carries (mlform.ml.bundle): what the manifest records, and
every way a copy that differs is refused."""

from __future__ import annotations

import json

import pytest
from mlform.ml import bundle as bundles


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "artifact").mkdir(parents=True)
    (run / "artifact" / "model.json").write_text('{"kind": "mlp"}')
    (run / "artifact" / "weights.pt").write_bytes(bytes(range(256)) * 4)
    (run / "metrics.json").write_text('{"auc": 0.91}')
    return run


@pytest.fixture
def staged(tmp_path, run_dir):
    files = {**bundles.tree(run_dir / "artifact", "artifact"),
             "metrics.json": run_dir / "metrics.json", "holdout.csv": b"a,b\n1,2\n"}
    return bundles.stage(tmp_path / "bundle", "training_job", "train", "local", files,
                         {"run_id": "r1", "metrics": {"auc": 0.91}})


def test_the_manifest_records_each_file_with_its_digest_and_size(staged):
    doc = json.loads((staged.directory / "manifest.json").read_text())
    assert doc["format"] == 1 and (doc["type"], doc["name"], doc["source"]) == \
        ("training_job", "train", "local")
    assert [f["path"] for f in doc["files"]] == \
        ["artifact/model.json", "artifact/weights.pt", "holdout.csv", "metrics.json"]
    weights = staged.file("artifact/weights.pt")
    assert weights.size == 1024
    assert weights.sha256 == bundles.digest_of(bytes(range(256)) * 4)
    assert doc["outputs"] == {"run_id": "r1", "metrics": {"auc": 0.91}}
    assert staged.size == sum(f["size"] for f in doc["files"])
    assert [f.path for f in staged.under("artifact")] == ["artifact/model.json",
                                                          "artifact/weights.pt"]


def test_loading_gives_back_the_same_bundle(staged):
    loaded = bundles.load(staged.directory)
    assert loaded.files == staged.files and loaded.outputs == staged.outputs


def test_listing_sizes_without_copying(run_dir):
    assert bundles.listing({"metrics.json": run_dir / "metrics.json", "x": b"abc"}) == \
        (("metrics.json", 13), ("x", 3))


def test_a_faithful_copy_verifies(staged, tmp_path):
    target = tmp_path / "target"
    for f in staged.files:
        (target / f.path).parent.mkdir(parents=True, exist_ok=True)
        (target / f.path).write_bytes(staged.path(f.path).read_bytes())
    bundles.verify_copy(staged, lambda rel: target / rel, "the target")
    bundles.verify_copy(staged, lambda rel: staged.path(rel).read_bytes(), "the target")


@pytest.mark.parametrize(("why", "damage", "message"), [
    ("one byte flipped, same size",
     lambda b: b[:-1] + bytes([b[-1] ^ 1]), "artifact/weights.pt of 'train' differs in s3://b/k"),
    ("truncated", lambda b: b[:10], "artifact/weights.pt of 'train' differs in s3://b/k"),
    ("missing", lambda b: None, "artifact/weights.pt of 'train' is missing from s3://b/k "
                                "after the copy"),
])
def test_a_corrupted_copy_is_refused(staged, why, damage, message):
    def read(rel):
        data = staged.path(rel).read_bytes()
        return damage(data) if rel == "artifact/weights.pt" else data

    with pytest.raises(bundles.BundleError) as exc:
        bundles.verify_copy(staged, read, "s3://b/k")
    assert str(exc.value).startswith(message), why


def test_a_corrupted_staging_copy_is_refused_on_loading(staged):
    staged.path("metrics.json").write_text('{"auc": 0.99}')
    with pytest.raises(bundles.BundleError) as exc:
        bundles.load(staged.directory)
    assert "metrics.json of 'train' differs in the staged copy: sha256 " in str(exc.value)
    assert "the manifest says" in str(exc.value)


def test_an_unfinished_export_is_not_a_bundle(tmp_path, staged):
    (staged.directory / "manifest.json").unlink()
    with pytest.raises(bundles.BundleError, match="its export did not finish"):
        bundles.load(staged.directory)


def test_a_path_leaving_the_bundle_is_refused(tmp_path):
    with pytest.raises(bundles.BundleError, match="must be relative"):
        bundles.stage(tmp_path / "b", "dataset", "d", "local", {"../escape": b"x"}, {})


def test_staging_again_replaces_an_interrupted_export(tmp_path):
    (tmp_path / "b" / "files").mkdir(parents=True)
    (tmp_path / "b" / "files" / "stale").write_text("left by a killed export")
    made = bundles.stage(tmp_path / "b", "dataset", "d", "local", {"data.csv": b"a\n1\n"}, {})
    assert [f.path for f in made.files] == ["data.csv"]
    assert not (tmp_path / "b" / "files" / "stale").exists()
