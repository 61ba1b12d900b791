"""Drift statistics on synthetic samples whose shift is known."""

from __future__ import annotations

import numpy as np
import pytest
from mlform.ml.monitoring import stats

REFERENCE_ROWS = 50_000
CURRENT_ROWS = 2_000
LEVELS = np.array(["a", "b", "c", "d"], dtype=object)
STEADY = [0.4, 0.3, 0.2, 0.1]
SHIFTED = [0.1, 0.2, 0.3, 0.4]


def sample(name: str, seed: int, shifted: bool, rows: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if name.startswith("num"):
        return rng.normal(1.0 if shifted else 0.0, 1.0, rows)
    return rng.choice(LEVELS, rows, p=SHIFTED if shifted else STEADY)


FEATURES = ["num_a", "num_b", "num_c", "cat_a", "cat_b", "cat_c"]
METHOD_PAIRS = [(n, c) for n in ("wasserstein", "psi", "ks") for c in ("jensenshannon", "chisquare")]


def drifted_features(numeric: str, categorical: str, shifted: set[str]) -> set[str]:
    found = set()
    for i, name in enumerate(FEATURES):
        # a reference much larger than the window, as training data is: the chi-square
        # test takes reference frequencies as exact
        reference = sample(name, seed=i, shifted=False, rows=REFERENCE_ROWS)
        current = sample(name, seed=100 + i, shifted=name in shifted, rows=CURRENT_ROWS)
        method = numeric if stats.feature_kind(reference) == "numeric" else categorical
        if stats.METHODS[method](reference, current).drifted:
            found.add(name)
    return found


@pytest.mark.parametrize(("numeric", "categorical"), METHOD_PAIRS,
                         ids=[f"{n}+{c}" for n, c in METHOD_PAIRS])
def test_samples_of_one_distribution_do_not_drift(numeric, categorical):
    assert drifted_features(numeric, categorical, shifted=set()) == set()


@pytest.mark.parametrize(("numeric", "categorical"), METHOD_PAIRS,
                         ids=[f"{n}+{c}" for n, c in METHOD_PAIRS])
def test_drift_is_found_on_exactly_the_shifted_features(numeric, categorical):
    # a one-std mean shift and a reversed category frequency
    assert drifted_features(numeric, categorical, shifted={"num_b", "cat_c"}) == \
        {"num_b", "cat_c"}


@pytest.mark.parametrize(("values", "kind"), [
    pytest.param(np.array([0.5, 1.5, 2.0]), "numeric", id="floats are numeric"),
    pytest.param(np.arange(100), "numeric", id="integers of many values are numeric"),
    pytest.param(np.arange(100) % 3, "categorical", id="integers of few values are categorical"),
    pytest.param(np.array([True, False] * 10), "categorical", id="booleans are categorical"),
    pytest.param(np.array(["fr", "de", None] * 10, dtype=object), "categorical",
                 id="repeated strings are categorical"),
    pytest.param(np.array([f"user {i}" for i in range(50)], dtype=object), "text",
                 id="mostly distinct strings are text"),
])
def test_feature_kind(values, kind):
    assert stats.feature_kind(values) == kind


@pytest.mark.parametrize(("method", "reference", "current", "drifted"), [
    pytest.param("wasserstein", np.zeros(100), np.zeros(100), False,
                 id="constant column: the std floor keeps the distance finite"),
    pytest.param("wasserstein", np.zeros(100), np.full(100, 0.01), True,
                 id="constant column that moves drifts"),
    pytest.param("psi", np.arange(100) % 5 * 1.0, np.arange(100) % 4 * 1.0, True,
                 id="psi with a reference value that vanishes stays finite"),
    pytest.param("chisquare", np.array(["a", "b"] * 50, dtype=object),
                 np.array(["a", "b", "c", "a"] * 25, dtype=object), True,
                 id="a category unseen in the reference is drift"),
])
def test_edge_cases(method, reference, current, drifted):
    value, found = stats.METHODS[method](reference, current)
    assert np.isfinite(value) or method == "chisquare"
    assert found is drifted


def test_clean_drops_missing_and_infinite_values():
    assert stats.clean(np.array([1.0, np.nan, np.inf, 2.0])).tolist() == [1.0, 2.0]
    assert stats.clean(np.array(["a", None, float("nan")], dtype=object)).tolist() == ["a"]


@pytest.mark.parametrize(("u", "v"), [
    pytest.param(np.random.default_rng(0).normal(0, 1, 5000),
                 np.random.default_rng(1).normal(0.3, 2, 700), id="continuous, unequal sizes"),
    pytest.param(np.round(np.random.default_rng(2).normal(0, 2, 3000)),
                 np.round(np.random.default_rng(3).normal(1, 2, 300)), id="many ties"),
    pytest.param(np.zeros(10), np.array([0.0, 1.0, 1.0]), id="a constant against a step"),
    pytest.param(np.array([3.0]), np.array([3.0]), id="one equal value each"),
])
def test_wasserstein_distance_is_scipys(u, v):
    from scipy.stats import wasserstein_distance

    assert stats.wasserstein_distance(u, v) == pytest.approx(wasserstein_distance(u, v),
                                                             rel=1e-12, abs=1e-15)
