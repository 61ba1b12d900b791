"""Drift statistics: does a current sample differ from a reference sample?

Each method takes two one-dimensional numpy arrays (missing and infinite values
already removed, see `clean`) and a threshold, and returns `Drift(value, drifted)`.
The definitions are Evidently's (`evidently.legacy.calculations.stattests`), to
the binning rule and the comparison operator, so that both tools give the same
verdict on the same data:

    wasserstein    numeric      W1(ref, cur) / max(std(ref), 0.001)   drift when >= threshold
    psi            numeric      sum((r - c) * ln(r / c)) over bins    drift when >= threshold
    ks             numeric      two-sample Kolmogorov-Smirnov p       drift when <= threshold
    jensenshannon  categorical  JS distance of frequencies (base e)   drift when >= threshold
    chisquare      categorical  chi-square p, expected = ref counts   drift when <  threshold

Bins for psi (Evidently's `get_binned_data`): a column with more than 20 distinct
reference values is cut at the Sturges edges of reference and current together;
otherwise every distinct value is its own bin. An empty bin is given a small
share (a millionth of the smallest non-empty share, or 0.0001) so the logarithm
stays finite.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

Kind = Literal["numeric", "categorical", "text"]

INTEGER_CARDINALITY_LIMIT = 10
"""Integer columns with at most this many distinct values are categorical (Evidently's rule)."""
DISTINCT_VALUES_AS_BINS = 20
"""Numeric columns with at most this many distinct reference values are binned by value."""
STD_FLOOR = 0.001
"""Floor of the reference std that normalises the Wasserstein distance (a constant column)."""


class Drift(NamedTuple):
    value: float
    drifted: bool


def feature_kind(values: np.ndarray) -> Kind:
    """Numeric or categorical, as Evidently infers it: floats are numeric, integers are
    categorical up to 10 distinct values, booleans are categorical, and strings are
    categorical unless more than half of them are distinct (free text, not compared)."""
    kind = values.dtype.kind
    if kind == "f":
        return "numeric"
    if kind in "iu":
        return "categorical" if _distinct(values) <= INTEGER_CARDINALITY_LIMIT else "numeric"
    present = values[~_missing(values)]
    if len(present) and _distinct(present) > 0.5 * len(present):
        return "text"
    return "categorical"


def clean(values: np.ndarray) -> np.ndarray:
    """The values a statistic is computed on: without missing and infinite ones."""
    return values[~_missing(values)]


def wasserstein(reference: np.ndarray, current: np.ndarray, threshold: float = 0.1) -> Drift:
    norm = max(float(np.std(reference)), STD_FLOOR)
    value = wasserstein_distance(reference, current) / norm
    return Drift(value, value >= threshold)


def wasserstein_distance(u: np.ndarray, v: np.ndarray) -> float:
    """First Wasserstein distance of two samples: the area between their CDFs.

    The integral scipy.stats.wasserstein_distance computes, about four times faster
    on large samples: one sort of both samples together, whose order tells at each
    point how many values of each sample lie at or below it. Within a run of equal
    values the partial counts are off, but the step there has zero width."""
    values = np.concatenate([u, v])
    order = np.argsort(values)
    values = values[order]
    from_u = np.cumsum(order[:-1] < len(u))
    gap = from_u / len(u) - (np.arange(1, len(values)) - from_u) / len(v)
    return float(np.sum(np.abs(gap) * np.diff(values)))


def psi(reference: np.ndarray, current: np.ndarray, threshold: float = 0.2) -> Drift:
    ref, cur = _binned_shares(reference, current, numeric=True)
    ref, cur = _fill_empty(ref), _fill_empty(cur)
    value = float(np.sum((ref - cur) * np.log(ref / cur)))
    return Drift(value, value >= threshold)


def ks(reference: np.ndarray, current: np.ndarray, threshold: float = 0.05) -> Drift:
    from scipy.stats import ks_2samp

    p_value = float(ks_2samp(reference, current).pvalue)
    return Drift(p_value, p_value <= threshold)


def jensenshannon(reference: np.ndarray, current: np.ndarray, threshold: float = 0.1) -> Drift:
    from scipy.spatial.distance import jensenshannon as js_distance

    ref, cur = _binned_shares(reference, current, numeric=False)
    value = float(js_distance(ref, cur))
    return Drift(value, value >= threshold)


def chisquare(reference: np.ndarray, current: np.ndarray, threshold: float = 0.05) -> Drift:
    from scipy.stats import chisquare as chisquare_test

    ref_counts, cur_counts = category_counts(reference, current)
    expected = ref_counts * (len(current) / len(reference))
    # A category absent from the reference has zero expectation: an infinite
    # statistic and p = 0, which is the verdict wanted (and Evidently's).
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = float(chisquare_test(cur_counts, expected).pvalue)
    return Drift(p_value, p_value < threshold)


METHODS = {"wasserstein": wasserstein, "psi": psi, "ks": ks,
           "jensenshannon": jensenshannon, "chisquare": chisquare}
"""Every method by the name the stack spec uses for it."""

DRIFT_WHEN = {"wasserstein": ">=", "psi": ">=", "ks": "<=", "jensenshannon": ">=",
              "chisquare": "<"}
"""How each method's value compares with its threshold when there is drift."""


def category_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each distinct value of either sample, aligned by value."""
    import pandas as pd

    # factorize hashes instead of sorting: several times faster than np.unique on strings
    codes, uniques = pd.factorize(np.concatenate([reference, current]))
    size = len(uniques)
    split = len(reference)
    return (np.bincount(codes[:split], minlength=size).astype(float),
            np.bincount(codes[split:], minlength=size).astype(float))


def _binned_shares(reference: np.ndarray, current: np.ndarray,
                   numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    if numeric and _distinct(reference) > DISTINCT_VALUES_AS_BINS:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref_counts = np.histogram(reference, edges)[0].astype(float)
        cur_counts = np.histogram(current, edges)[0].astype(float)
    else:
        ref_counts, cur_counts = category_counts(reference, current)
    return ref_counts / len(reference), cur_counts / len(current)


def _fill_empty(shares: np.ndarray) -> np.ndarray:
    smallest = shares[shares != 0].min()
    filler = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, filler, shares)


def _distinct(values: np.ndarray) -> int:
    import pandas as pd

    return int(pd.unique(values).size)


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fc":
        return ~np.isfinite(values)
    if values.dtype.kind == "O":
        import pandas as pd

        return pd.isna(values)
    return np.zeros(len(values), dtype=bool)
