"""Our statistics give Evidently's values and verdicts on the same columns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from mlform.ml.monitoring import stats

ROWS = 3000

# (column, method, threshold, kind, reference, current)
COLUMNS = [
    ("steady_wasserstein", "wasserstein", 0.1, "num", 0.0, 0.0),
    ("shifted_wasserstein", "wasserstein", 0.1, "num", 0.0, 0.3),
    ("steady_psi", "psi", 0.2, "num", 0.0, 0.0),
    ("shifted_psi", "psi", 0.2, "num", 0.0, 1.0),
    ("few_values_psi", "psi", 0.1, "few", 0.0, 1.0),
    ("steady_ks", "ks", 0.05, "num", 0.0, 0.0),
    ("shifted_ks", "ks", 0.05, "num", 0.0, 0.1),
    ("steady_jensenshannon", "jensenshannon", 0.1, "cat", 0.0, 0.0),
    ("shifted_jensenshannon", "jensenshannon", 0.1, "cat", 0.0, 0.6),
    ("steady_chisquare", "chisquare", 0.05, "cat", 0.0, 0.0),
    ("shifted_chisquare", "chisquare", 0.05, "cat", 0.0, 0.15),
]


def column(kind: str, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "num":
        return rng.normal(shift, 1.0, ROWS)
    if kind == "few":
        return np.round(rng.normal(5 + shift, 1.5, ROWS)).clip(0, 10).astype(float)
    weights = np.array([0.4, 0.3, 0.2, 0.1]) * (1 - shift) + np.array([0.1, 0.2, 0.3, 0.4]) * shift
    return rng.choice(np.array(["a", "b", "c", "d"], dtype=object), ROWS, p=weights)


@pytest.fixture(scope="module")
def samples() -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = pd.DataFrame({name: column(kind, ref, seed=i)
                              for i, (name, _, _, kind, ref, _) in enumerate(COLUMNS)})
    current = pd.DataFrame({name: column(kind, cur, seed=100 + i)
                            for i, (name, _, _, kind, _, cur) in enumerate(COLUMNS)})
    return reference, current


@pytest.fixture(scope="module")
def evidently_results(samples) -> dict[str, tuple[float, bool]]:
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        # evidently 0.7 imports a pandas helper that pandas 3 removed; only its
        # column-type data-integrity test uses it, which this comparison does not run
        import pandas.core.dtypes.common as common

        patch.setattr(common, "infer_dtype_from_object", lambda value: value, raising=False)
        warnings.simplefilter("ignore")  # its dependencies' deprecation notices
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    reference, current = samples
    definition = DataDefinition(
        numerical_columns=[c[0] for c in COLUMNS if c[3] != "cat"],
        categorical_columns=[c[0] for c in COLUMNS if c[3] == "cat"])
    report = Report([DataDriftPreset(per_column_method={c[0]: c[1] for c in COLUMNS},
                                     per_column_threshold={c[0]: c[2] for c in COLUMNS})],
                    include_tests=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's own deprecation notices under pandas 3
        result = report.run(Dataset.from_pandas(current, data_definition=definition),
                            Dataset.from_pandas(reference, data_definition=definition)).dict()
    values = {m["config"]["column"]: m["value"] for m in result["metrics"]
              if m["config"]["type"].endswith("ValueDrift")}
    verdicts = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
                for t in result["tests"] if t["id"] == "drift"}
    return {name: (values[name], verdicts[name]) for name in values}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "method", "threshold"), [c[:3] for c in COLUMNS],
                         ids=[c[0] for c in COLUMNS])
def test_same_value_and_verdict_as_evidently(samples, evidently_results, name, method,
                                             threshold):
    reference, current = samples
    value, drifted = stats.METHODS[method](reference[name].to_numpy(),
                                           current[name].to_numpy(), threshold)
    assert value == pytest.approx(evidently_results[name][0], rel=1e-9, abs=1e-12)
    assert drifted is evidently_results[name][1]


def test_the_columns_cover_both_verdicts(samples):
    # the comparison above means little unless some columns drift and some do not
    reference, current = samples
    verdicts = {stats.METHODS[method](reference[name].to_numpy(), current[name].to_numpy(),
                                      threshold).drifted
                for name, method, threshold, *_ in COLUMNS}
    assert verdicts == {True, False}
