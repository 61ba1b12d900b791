import json

import pandas as pd
import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
    UpdateRequest,
)
from mlform.engine.values import Unknown
from mlform.providers.local.dataset import DatasetHandler, load_dataset
from mlform.providers.local.paths import LocalPaths

TX = ResourceRef("transactions", "dataset")
ROWS = pd.DataFrame({"id": [1, 2, 3, 4], "amount": [10.0, 25.5, None, 40.0],
                     "country": ["fr", "de", "fr", "it"], "fraud": [0, 1, 0, 0]})


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "data").mkdir()
    ROWS.to_csv(tmp_path / "data" / "tx.csv", index=False)
    return ProviderContext("test", tmp_path, "local", {}, tmp_path / ".mlform" / "local")


def create(ctx, **inputs):
    return DatasetHandler(ctx).create(
        CreateRequest(TX, {"source": "data/tx.csv", **inputs}, "k"), Progress())


def test_the_version_is_the_content_digest_and_is_stored_once(ctx):
    first = create(ctx)
    again = create(ctx)
    assert first.outputs["uri"] == f"local://datasets/transactions/{first.outputs['version']}"
    assert len(first.outputs["version"]) == 12
    assert again.outputs["version"] == first.outputs["version"]
    assert len(again.outputs["versions"]) == 1
    stored = LocalPaths(ctx.data_dir).dataset("transactions", first.outputs["version"])
    assert sorted(p.name for p in stored.iterdir()) == ["data.csv", "meta.json", "profile.json"]
    assert load_dataset(LocalPaths(ctx.data_dir), first.outputs["uri"]).equals(ROWS)


def test_changed_content_is_planned_as_an_update_with_a_note(ctx):
    first = create(ctx)
    pd.concat([ROWS, ROWS.tail(1)]).to_csv(ctx.stack_dir / "data" / "tx.csv", index=False)
    inputs = {"source": "data/tx.csv"}

    diff = DatasetHandler(ctx).diff(DiffRequest(TX, inputs, first.outputs, inputs))

    new = diff.planned_outputs["version"]
    assert new != first.outputs["version"]
    assert [(c.path, c.before, c.after, c.forces_replacement) for c in diff.changes] == \
        [("version", first.outputs["version"], new, False)]
    assert diff.note == f"source data/tx.csv changed: version {first.outputs['version']} -> {new}"

    second = DatasetHandler(ctx).update(UpdateRequest(TX, inputs, first.outputs, inputs),
                                        Progress())
    assert [v["version"] for v in second.outputs["versions"]] == [first.outputs["version"], new]


def test_unchanged_content_plans_nothing_but_knows_the_uri(ctx):
    first = create(ctx)
    inputs = {"source": "data/tx.csv"}
    diff = DatasetHandler(ctx).diff(DiffRequest(TX, inputs, first.outputs, inputs))
    assert diff.changes == [] and diff.note == ""
    assert diff.planned_outputs["uri"] == first.outputs["uri"]
    assert diff.planned_outputs["rows"] == 4


def test_an_unknown_source_is_not_read_at_plan_time(ctx):
    diff = DatasetHandler(ctx).diff(DiffRequest(TX, None, None, {"source": Unknown("x")}))
    assert diff.planned_outputs == {} and diff.error is None


def test_the_profile_describes_each_column(ctx):
    done = create(ctx)
    profile = json.loads((LocalPaths(ctx.data_dir).dataset(
        "transactions", done.outputs["version"]) / "profile.json").read_text())
    amount, country = profile["columns"]["amount"], profile["columns"]["country"]
    assert (amount["kind"], amount["count"], amount["nulls"], amount["max"]) == \
        ("numeric", 3, 1, 40.0)
    assert len(amount["histogram"]["edges"]) == 21 and sum(amount["histogram"]["counts"]) == 3
    assert country["kind"] == "categorical"
    assert dict(zip(country["histogram"]["values"], country["histogram"]["counts"],
                    strict=True)) == {"fr": 2, "de": 1, "it": 1}


@pytest.mark.parametrize("inputs, message", [
    ({"quality": {"min_rows": 10}},
     "quality rule 'min_rows' failed: measured 4 rows, bound >= 10"),
    ({"quality": {"max_rows": 3}},
     "quality rule 'max_rows' failed: measured 4 rows, bound <= 3"),
    ({"quality": {"max_null_fraction": 0.1}},
     "quality rule 'max_null_fraction' failed on column 'amount': measured 0.25, bound <= 0.1"),
    ({"quality": {"max_null_fraction": {"amount": 0.2}}},
     "quality rule 'max_null_fraction' failed on column 'amount': measured 0.25, bound <= 0.2"),
    ({"quality": {"unique": ["country"]}},
     "quality rule 'unique' failed on column 'country': measured 1 repeated value(s)"),
    ({"columns": {"amount": {"type": "float", "nullable": False}}},
     "column 'amount': rule 'nullable: false' failed: measured 1 null value(s)"),
    ({"columns": {"amount": {"type": "float", "min": 20}}},
     "column 'amount': rule 'min' failed: measured min 10, bound >= 20"),
    ({"columns": {"amount": {"type": "float", "max": 30}}},
     "column 'amount': rule 'max' failed: measured max 40, bound <= 30"),
    ({"columns": {"country": {"type": "string", "allowed": ["fr", "de"]}}},
     "column 'country': rule 'allowed' failed: measured values ['it'] not in ['de', 'fr']"),
    ({"columns": {"country": {"type": "int"}}},
     "column 'country': rule 'type: int' failed: measured non-numeric values such as 'fr'"),
    ({"columns": {"balance": {"type": "float"}}},
     "column 'balance' is declared but missing from the data (found: id, amount, country, fraud)"),
], ids=["min-rows", "max-rows", "null-fraction", "null-fraction-per-column", "unique",
        "nullable", "min", "max", "allowed", "type", "missing-column"])
def test_a_failed_check_names_rule_column_and_measure_and_stores_nothing(ctx, inputs, message):
    failed = create(ctx, **inputs)
    assert failed.error.splitlines()[1].strip() == message
    assert not list(LocalPaths(ctx.data_dir).root.glob("datasets/transactions/*/meta.json"))


def test_declared_checks_that_hold_pass(ctx):
    done = create(ctx, columns={"id": {"type": "int", "nullable": False},
                                "fraud": {"type": "int", "allowed": [0, 1]},
                                "amount": {"type": "float", "min": 0}},
                  quality={"min_rows": 4, "unique": ["id"]})
    assert done.error is None


def test_a_missing_source_is_an_error_at_plan_time(ctx):
    diff = DatasetHandler(ctx).diff(DiffRequest(TX, None, None, {"source": "data/none.csv"}))
    assert diff.error.startswith("source 'data/none.csv' not found")


def test_observe_notices_a_removed_version_and_delete_removes_all(ctx):
    handler = DatasetHandler(ctx)
    done = create(ctx)
    assert handler.observe(ObserveRequest(TX, {"source": "data/tx.csv"}, None, "k")).exists

    handler.delete(DeleteRequest(TX, {"source": "data/tx.csv"}, done.outputs), Progress())

    gone = handler.observe(ObserveRequest(TX, {"source": "data/tx.csv"}, done.outputs))
    assert not gone.exists and "is gone" in gone.detail
    assert not (ctx.data_dir / "datasets" / "transactions").exists()


def test_parquet_sources_work_the_same(ctx):
    ROWS.to_parquet(ctx.stack_dir / "data" / "tx.parquet", index=False)
    done = DatasetHandler(ctx).create(
        CreateRequest(TX, {"source": "data/tx.parquet"}, "k"), Progress())
    assert done.outputs["rows"] == 4
