"""A dataset's declared `columns` and `quality` rules hold on aws as on local: the same
file breaking a rule fails the apply with the same message on both providers, and aws
uploads nothing; a file that passes is uploaded."""

from __future__ import annotations

import pytest
from aws_stack import create
from conftest import BUCKET
from mlform.engine.provider import ProviderContext
from mlform.providers.local.provider import LocalProvider

CSV = "id,amount,country\n1,10.5,fr\n2,,fr\n3,30.0,de\n4,40.0,it\n"


@pytest.mark.parametrize(("rules", "message"), [
    pytest.param({"quality": {"min_rows": 10}},
                 "quality rule 'min_rows' failed: measured 4 rows, bound >= 10", id="min_rows"),
    pytest.param({"quality": {"max_null_fraction": {"amount": 0.2}}},
                 "quality rule 'max_null_fraction' failed on column 'amount': measured 0.25, "
                 "bound <= 0.2", id="max_null_fraction"),
    pytest.param({"quality": {"unique": ["country"]}},
                 "quality rule 'unique' failed on column 'country': measured 1 repeated "
                 "value(s)", id="unique"),
    pytest.param({"columns": {"amount": {"type": "float", "nullable": False}}},
                 "column 'amount': rule 'nullable: false' failed: measured 1 null value(s)",
                 id="nullable"),
    pytest.param({"columns": {"country": {"type": "string", "allowed": ["fr", "de"]}}},
                 "column 'country': rule 'allowed' failed: measured values ['it'] not in "
                 "['de', 'fr']", id="allowed"),
])
def test_a_rule_broken_on_aws_fails_as_on_local(tmp_path, make_provider, client, rules,
                                                message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(CSV)
    inputs = {"source": "data/t.csv", **rules}
    local = LocalProvider(ProviderContext(stack="fraud", stack_dir=tmp_path,
                                          provider_name="local", config={},
                                          data_dir=tmp_path / ".mlform" / "local"))
    on_local = create(local, "transactions", "dataset", inputs)
    on_aws = create(make_provider(), "transactions", "dataset", inputs)
    assert on_local.error is not None and message in on_local.error
    assert on_aws.error == on_local.error
    listed = client("s3").list_objects_v2(Bucket=BUCKET, Prefix="mlform/fraud/datasets/")
    assert listed.get("KeyCount", 0) == 0


def test_a_file_that_keeps_its_rules_is_uploaded(tmp_path, make_provider, client):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(CSV)
    answer = create(make_provider(), "transactions", "dataset", {
        "source": "data/t.csv", "quality": {"min_rows": 4, "unique": ["id"]},
        "columns": {"id": {"type": "int", "nullable": False}}})
    assert answer.error is None, answer.error
    listed = client("s3").list_objects_v2(Bucket=BUCKET, Prefix="mlform/fraud/datasets/")
    assert listed["KeyCount"] == 1
