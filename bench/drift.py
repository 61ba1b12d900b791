"""Drift evaluation speed: mlform's statistics against Evidently's DataDriftPreset.

Both evaluate the same current table against the same reference (mixed numeric and
categorical columns, some shifted), with the same column types, methods and
thresholds; the script prints both times, the ratio and the per-column agreement.

    .venv/bin/python bench/drift.py [--rows 100000] [--columns 20]
        [--numeric-method wasserstein] [--categorical-method jensenshannon]

mlform's time covers what an evaluation does per feature: kind detection, cleaning,
the statistic and the report's histograms. Evidently's covers `Report.run` and
reading its results. Imports and data generation are outside both.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from mlform.engine.spec.models import Monitor
from mlform.ml.monitoring.evaluate import feature_drift

CATEGORIES = np.array([f"level_{i}" for i in range(8)], dtype=object)


def tables(rows: int, columns: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two thirds numeric, one third categorical; every fourth column shifted."""
    rng = np.random.default_rng(seed)
    reference, current = {}, {}
    base = rng.dirichlet(np.ones(len(CATEGORIES)))
    for i in range(columns):
        shifted = i % 4 == 0
        if i % 3 == 2:
            name = f"cat_{i}"
            moved = 0.7 * base + 0.3 * rng.dirichlet(np.ones(len(CATEGORIES)))
            reference[name] = rng.choice(CATEGORIES, rows, p=base)
            current[name] = rng.choice(CATEGORIES, rows, p=moved if shifted else base)
        else:
            name = f"num_{i}"
            reference[name] = rng.normal(0.0, 1.0, rows)
            current[name] = rng.normal(0.5 if shifted else 0.0, 1.0, rows)
    return pd.DataFrame(reference), pd.DataFrame(current)


def run_mlform(reference: pd.DataFrame, current: pd.DataFrame,
               monitor: Monitor) -> dict[str, dict]:
    return {name: feature_drift(name, reference[name].to_numpy(), current[name].to_numpy(),
                                monitor) for name in reference.columns}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str],
                  monitor: Monitor) -> dict[str, tuple[float, bool]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[n for n, k in kinds.items() if k == "numeric"],
        categorical_columns=[n for n, k in kinds.items() if k == "categorical"])
    report = Report([DataDriftPreset(
        num_method=monitor.numeric_method, cat_method=monitor.categorical_method,
        num_threshold=getattr(monitor.thresholds, monitor.numeric_method),
        cat_threshold=getattr(monitor.thresholds, monitor.categorical_method))],
        include_tests=True)
    result = report.run(Dataset.from_pandas(current, data_definition=definition),
                        Dataset.from_pandas(reference, data_definition=definition)).dict()
    values = {m["config"]["column"]: m["value"] for m in result["metrics"]
              if m["config"]["type"].endswith("ValueDrift")}
    verdicts = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
                for t in result["tests"] if t["id"] == "drift"}
    return {name: (values[name], verdicts[name]) for name in values}


def import_evidently() -> None:
    # evidently 0.7 imports a pandas helper that pandas 3 removed; only its column-type
    # data-integrity test uses it, which this benchmark does not run
    import pandas.core.dtypes.common as common

    if not hasattr(common, "infer_dtype_from_object"):
        common.infer_dtype_from_object = lambda value: value
    import evidently.presets  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--numeric-method", default="wasserstein")
    parser.add_argument("--categorical-method", default="jensenshannon")
    args = parser.parse_args()
    monitor = Monitor.model_validate({
        "type": "monitor", "endpoint": "bench", "reference": "local://datasets/bench/0",
        "numeric_method": args.numeric_method, "categorical_method": args.categorical_method})
    warnings.simplefilter("ignore")  # evidently's deprecation notices under pandas 3
    import_evidently()
    reference, current = tables(args.rows, args.columns)

    start = time.perf_counter()
    ours = run_mlform(reference, current, monitor)
    mlform_seconds = time.perf_counter() - start

    kinds = {name: entry["kind"] for name, entry in ours.items()}
    start = time.perf_counter()
    theirs = run_evidently(reference, current, kinds, monitor)
    evidently_seconds = time.perf_counter() - start

    print(f"{args.rows:,} current x {args.columns} columns against {args.rows:,} reference "
          f"rows ({args.numeric_method} / {args.categorical_method})")
    print(f"{'column':<8} {'kind':<12} {'mlform':>12} {'evidently':>12}  verdicts")
    agree = 0
    for name, entry in ours.items():
        value, drifted = theirs[name]
        same = entry["drifted"] == drifted
        agree += same
        print(f"{name:<8} {entry['kind']:<12} {entry['value']:>12.6g} {value:>12.6g}  "
              f"{'drift' if entry['drifted'] else 'ok'} / {'drift' if drifted else 'ok'}"
              f"{'' if same else '  DIFFERENT'}")
    print(f"mlform    {mlform_seconds:8.3f} s")
    print(f"evidently {evidently_seconds:8.3f} s")
    print(f"ratio     {evidently_seconds / mlform_seconds:8.1f}x faster")
    print(f"verdicts  {agree}/{len(ours)} columns agree")


if __name__ == "__main__":
    main()
