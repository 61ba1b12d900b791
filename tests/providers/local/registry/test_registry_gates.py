import pandas as pd
import pytest
from mlform.engine.spec.models import Gate
from mlform.ml.artifact import load_predictor
from mlform.ml.gates import evaluate_gates
from mlform.providers.local.paths import LocalPaths

pytestmark = pytest.mark.slow


def judge(ctx, artifact, *gates):
    run_dir = LocalPaths(ctx.data_dir).resolve(artifact)
    holdout = pd.read_parquet(run_dir / "holdout.parquet")
    return evaluate_gates([Gate.model_validate(g) for g in gates],
                          load_predictor(run_dir / "artifact"), holdout)


@pytest.mark.parametrize("gate, passed", [
    ({"metric": "auc", "min": 0.9}, True),
    ({"metric": "auc", "min": 0.999999}, False),
    ({"metric": "log_loss", "max": 0.0001}, False),
    ({"metric": "accuracy", "min": 0.5, "max": 1.0}, True),
], ids=["auc-passes", "auc-too-high", "log-loss-bound", "range"])
def test_metric_gates(ctx, fair_run, gate, passed):
    [result] = judge(ctx, fair_run, gate)
    assert result.passed is passed
    assert result.kind == "metric"


def test_a_failed_metric_gate_says_what_it_measured(ctx, fair_run):
    [result] = judge(ctx, fair_run, {"metric": "auc", "min": 0.999999})
    assert result.failure() == f"gate 'auc >= 0.999999' failed: measured {result.measured:.4f}"


def test_a_metric_the_task_has_not_is_a_failed_gate(ctx, fair_run):
    [result] = judge(ctx, fair_run, {"metric": "rmse", "max": 1})
    assert not result.passed
    assert "'rmse' is not measured for this classification model" in result.failure()


@pytest.mark.parametrize("fairness, threshold", [
    ("four_fifths_rule", {}),
    ("demographic_parity_difference", {"max": 0.2}),
    ("demographic_parity_ratio", {"min": 0.8}),
    ("equalized_odds_difference", {"max": 0.25}),
], ids=["four-fifths", "dp-difference", "dp-ratio", "equalized-odds"])
def test_fairness_gates_pass_unbiased_and_fail_biased_models(
        ctx, fair_run, biased_run, fairness, threshold):
    gate = {"fairness": fairness, "sensitive_column": "group", **threshold}
    [fair] = judge(ctx, fair_run, gate)
    [biased] = judge(ctx, biased_run, gate)
    assert fair.passed, fair.failure()
    assert not biased.passed
    assert set(biased.groups) == {"f", "m"}
    assert biased.groups["f"]["selection_rate"] < biased.groups["m"]["selection_rate"]


def test_the_four_fifths_rule_defaults_to_a_ratio_of_0_8(ctx, biased_run):
    [result] = judge(ctx, biased_run, {"fairness": "four_fifths_rule",
                                       "sensitive_column": "group"})
    assert result.min == 0.8
    assert result.gate == "four_fifths_rule(group): selection_rate_ratio >= 0.8"


@pytest.mark.parametrize("noise, bound, passed", [
    (0.01, 0.05, True),
    (3.0, 0.05, False),
], ids=["small-noise", "heavy-noise"])
def test_robustness_gate_bounds_the_metric_drop_under_noise(ctx, fair_run, noise, bound,
                                                            passed):
    [result] = judge(ctx, fair_run, {"robustness": "gaussian_noise", "noise": noise,
                                     "robustness_metric": "accuracy", "max": bound})
    assert result.passed is passed, result.detail
    assert result.gate == f"gaussian_noise({noise:g}): accuracy drop <= {bound:g}"


def test_robustness_noise_is_seeded(ctx, fair_run):
    gate = {"robustness": "gaussian_noise", "noise": 0.5, "max": 1}
    assert judge(ctx, fair_run, gate)[0].measured == judge(ctx, fair_run, gate)[0].measured
