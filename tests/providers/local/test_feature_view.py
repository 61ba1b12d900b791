import json

import numpy as np
import pandas as pd
import pytest
from mlform.engine.provider import (
    CreateRequest,
    DiffRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
)
from mlform.providers.local.dataset import DatasetHandler
from mlform.providers.local.feature_view import FeatureViewHandler
from mlform.providers.local.features.offline import point_in_time_join
from mlform.providers.local.features.online import online_features
from mlform.providers.local.training.handler import TrainingJobHandler

HOUR = 3600.0


def t(clock: str) -> pd.Timestamp:
    return pd.Timestamp(f"2024-03-01 {clock}", tz="UTC")


FEATURES = pd.DataFrame({
    "customer": [1, 2, 1, 1],
    "at": [t("10:00"), t("09:00"), t("12:00"), t("14:00")],
    "spend": [1.0, 10.0, 2.0, 3.0],
}).sort_values("at", kind="mergesort")


@pytest.mark.parametrize(("customer", "at", "expected"), [
    (1, "11:00", 1.0),
    (1, "12:00", 2.0),
    (1, "11:59:59", 1.0),
    (1, "09:30", None),
    (1, "15:00", 3.0),
    (1, "16:30", None),
    (2, "10:30", 10.0),
    (2, "12:00", None),
    (3, "12:00", None),
], ids=["latest-earlier-row", "a-row-at-the-same-time-counts", "never-a-future-row",
        "nothing-earlier", "latest-of-three", "older-than-ttl", "within-ttl",
        "expired-after-ttl", "unknown-entity"])
def test_point_in_time_join_takes_the_latest_earlier_row_within_ttl(customer, at, expected):
    labels = pd.DataFrame({"customer": [customer], "at": [t(at)], "churned": [1]})
    joined = point_in_time_join(FEATURES, labels, "customer", "at", ttl=2 * HOUR)
    value = joined.loc[0, "spend"]
    assert (pd.isna(value) if expected is None else value == expected), joined


def test_the_join_keeps_the_labels_order_and_columns():
    labels = pd.DataFrame({"customer": [1, 2, 1], "at": ["2024-03-01 15:00",
                                                         "2024-03-01 09:30",
                                                         "2024-03-01 10:00"],
                           "churned": [1, 0, 1]})
    joined = point_in_time_join(FEATURES, labels, "customer", "at", ttl=None)
    assert joined["churned"].tolist() == [1, 0, 1]
    assert joined["customer"].tolist() == [1, 2, 1]
    assert joined["spend"].tolist() == [3.0, 10.0, 1.0]


def test_a_label_column_named_like_a_feature_is_refused():
    labels = pd.DataFrame({"customer": [1], "at": [t("11:00")], "spend": [5.0]})
    with pytest.raises(ValueError, match="'spend' are both in the labels and features"):
        point_in_time_join(FEATURES, labels, "customer", "at", ttl=None)


# --- the resource -------------------------------------------------------------------

def events(rows: int = 300, entities: int = 25, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer": rng.integers(0, entities, rows),
        "event_time": (pd.Timestamp("2024-01-01", tz="UTC")
                       + pd.to_timedelta(rng.integers(0, 30 * 24, rows), unit="h")).astype(str),
        "spend": rng.gamma(2.0, 30.0, rows).round(2),
        "visits": rng.integers(0, 20, rows),
    })


VIEW = {"entity": "customer", "timestamp": "event_time", "ttl": "3d",
        "features": ["spend", "visits", {"name": "spend_per_visit",
                                           "expr": "spend / (visits + 1)"}]}


@pytest.fixture
def ctx(tmp_path) -> ProviderContext:
    return ProviderContext("test", tmp_path, "local", {}, tmp_path / ".mlform" / "local")


def store(ctx, name: str, frame: pd.DataFrame) -> str:
    (ctx.stack_dir / "data").mkdir(exist_ok=True)
    frame.to_csv(ctx.stack_dir / "data" / f"{name}.csv", index=False)
    done = DatasetHandler(ctx).create(CreateRequest(
        ResourceRef(name, "dataset"), {"source": f"data/{name}.csv"}, "k"), Progress())
    assert done.error is None, done.error
    return done.outputs["uri"]


def materialise(ctx, dataset: str, **overrides):
    done = FeatureViewHandler(ctx).create(CreateRequest(
        ResourceRef("customer_stats", "feature_view"), {"dataset": dataset, **VIEW, **overrides},
        "k"), Progress())
    assert done.error is None, done.error
    return done.outputs


def test_materialising_writes_offline_and_online_stores_and_adopts_a_rerun(ctx):
    raw = events()
    outputs = materialise(ctx, store(ctx, "events", raw))
    assert outputs["uri"] == f"local://features/customer_stats/{outputs['version']}"
    assert outputs["features"] == ["spend", "visits", "spend_per_visit"]
    assert (outputs["rows"], outputs["entities"]) == (300, raw["customer"].nunique())
    offline = pd.read_parquet(outputs["path"])
    assert offline["event_time"].is_monotonic_increasing
    assert np.allclose(offline["spend_per_visit"], offline["spend"] / (offline["visits"] + 1))
    seen = []
    again = FeatureViewHandler(ctx).create(CreateRequest(
        ResourceRef("customer_stats", "feature_view"), {"dataset": store(ctx, "events", raw),
                                                         **VIEW}, "k"),
        Progress(lambda m, f: seen.append(m)))
    assert again.outputs["version"] == outputs["version"]
    assert seen == [f"version {outputs['version']} is already materialised: adopting it"]


def test_online_lookup_equals_the_offline_join_at_the_same_time(ctx):
    outputs = materialise(ctx, store(ctx, "events", events()))
    offline = pd.read_parquet(outputs["path"])
    now = offline["event_time"].max() + pd.Timedelta(hours=30)
    keys = sorted(offline["customer"].unique().tolist()) + [999]
    labels = pd.DataFrame({"customer": keys, "event_time": [now] * len(keys)})
    joined = point_in_time_join(offline, labels, "customer", "event_time", ttl=3 * 86400)
    online = online_features(outputs["online_store"], keys, as_of=now)
    names = outputs["features"]
    expected = [{n: (None if pd.isna(row[n]) else row[n]) for n in names}
                for _, row in joined.iterrows()]
    assert [{n: row[n] for n in names} for row in online] == expected
    # the ttl both expires some entities and keeps others: the comparison covers both
    assert any(e["spend"] is None for e in expected[:-1])
    assert any(e["spend"] is not None for e in expected)


def test_the_plan_names_each_changed_feature_and_the_new_version(ctx):
    dataset = store(ctx, "events", events())
    outputs = materialise(ctx, dataset)
    desired = {"dataset": dataset, **VIEW, "features": [
        "spend", {"name": "spend_per_visit", "expr": "spend / visits"},
        {"name": "big_spender", "expr": "spend > 100"}]}
    diff = FeatureViewHandler(ctx).diff(DiffRequest(
        ResourceRef("customer_stats", "feature_view"), {"dataset": dataset, **VIEW}, outputs,
        desired))
    assert diff.error is None
    assert [(c.path, c.before, c.after, c.reason) for c in diff.changes] == [
        ("features.big_spender", None, "big_spender = spend > 100", "feature added"),
        ("features.spend_per_visit", "spend_per_visit = spend / (visits + 1)",
         "spend_per_visit = spend / visits", "feature changed"),
        ("features.visits", "visits", None, "feature removed")]
    version = diff.planned_outputs["version"]
    assert version != outputs["version"]
    assert diff.note == (f"offline and online stores re-materialised as version {version} "
                         f"(local://features/customer_stats/{version})")
    unchanged = FeatureViewHandler(ctx).diff(DiffRequest(
        ResourceRef("customer_stats", "feature_view"), {"dataset": dataset, **VIEW}, outputs,
        {"dataset": dataset, **VIEW}))
    assert (unchanged.changes, unchanged.note) == ([], "")


@pytest.mark.parametrize(("features", "message"), [
    (["spend", "missing"], "column(s) 'missing' not in the dataset"),
    ([{"name": "bad", "expr": "spend +"}], "derived feature 'bad': expression 'spend +' failed"),
    (["spend", "spend"], "feature(s) 'spend' listed more than once"),
], ids=["missing-column", "broken-expression", "repeated-name"])
def test_a_broken_definition_is_reported_and_nothing_is_stored(ctx, features, message):
    dataset = store(ctx, "events", events())
    done = FeatureViewHandler(ctx).create(CreateRequest(
        ResourceRef("customer_stats", "feature_view"),
        {"dataset": dataset, **VIEW, "features": features}, "k"), Progress())
    assert message in done.error
    assert not list((ctx.data_dir / "features").glob("customer_stats/*/meta.json"))
    gone = FeatureViewHandler(ctx).observe(ObserveRequest(
        ResourceRef("customer_stats", "feature_view"),
        {"dataset": dataset, **VIEW, "features": features}, None))
    assert not gone.exists


@pytest.mark.slow
def test_a_training_job_with_labels_trains_on_point_in_time_joined_rows(ctx):
    raw = events(rows=400)
    view = materialise(ctx, store(ctx, "events", raw))
    rng = np.random.default_rng(1)
    labels = raw.sample(200, random_state=1)[["customer", "event_time"]].reset_index(drop=True)
    labels["event_time"] = (pd.to_datetime(labels["event_time"])
                            + pd.to_timedelta(rng.integers(0, 48, 200), unit="h")).astype(str)
    labels["churned"] = rng.integers(0, 2, 200)
    labels_uri = store(ctx, "labels", labels)
    done = TrainingJobHandler(ctx).create(CreateRequest(
        ResourceRef("train", "training_job"),
        {"feature_view": view["uri"], "labels": labels_uri, "algorithm": "logistic_regression",
         "target": "churned", "features": view["features"],
         "hyperparameters": {"epochs": 2}}, "k"), Progress())
    assert done.error is None, done.error
    labels_version = labels_uri.rsplit("/", 1)[1]
    assert done.outputs["data_version"] == f"{view['version']}+{labels_version}"
    params = json.loads((ctx.data_dir / "runs" / "train" / done.outputs["run_id"]
                         / "params.json").read_text())
    trained_on = pd.read_parquet(params["data"]["path"])
    expected = point_in_time_join(pd.read_parquet(view["path"]), labels, "customer",
                                  "event_time", ttl=3 * 86400)
    pd.testing.assert_frame_equal(trained_on, expected)
