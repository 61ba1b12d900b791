"""mlform.ml.datasets: the dataset version every provider and the engine record."""

import hashlib

import pytest
from mlform.ml.datasets import content_version


@pytest.mark.parametrize("data", [b"", b"a,b\n1,2\n", bytes(range(256)) * 9000],
                         ids=["empty", "small", "larger-than-a-block"])
def test_the_version_is_the_sha256_prefix_of_the_bytes(tmp_path, data):
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    assert content_version(path) == hashlib.sha256(data).hexdigest()[:12]


def test_one_changed_byte_is_a_new_version(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"x\n1\n")
    second.write_bytes(b"x\n2\n")
    assert content_version(first) != content_version(second)
