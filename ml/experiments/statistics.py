"""The tests that decide an experiment: fixed-horizon and sequential.

Each arm's observations are numbers in arrival order: 1/0 for a correct/incorrect
prediction (metric `accuracy`) or a business outcome reported with the feedback
(metric `outcome`, e.g. revenue per request).

- Fixed horizon: the sample size per arm is fixed before the data (from the baseline
  rate, the smallest effect worth finding, alpha and power); until both arms reach it
  the verdict is `collecting`, and then one two-sided z-test on the first `n` of each
  arm decides. Looking before the horizon decides nothing, so looking often does not
  inflate the false-positive rate ("peeking").
- Sequential: the mixture sequential probability ratio test (mSPRT; Johari, Pekelis
  and Walsh, "Always valid inference", 2017) with a normal mixing distribution of scale
  `mde`: its p-value is valid at every look, so the experiment may stop as soon as it
  falls below alpha. The running evidence is recomputed over the whole arrival order.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

# The normal quantiles and tails from the standard library: importing scipy.stats for
# them took most of an `mlform experiment` run (seconds on a loaded machine).
_quantile = NormalDist().inv_cdf

MIN_PER_ARM = 10
"""The sequential test's variance estimate needs this many observations per arm."""


def required_per_arm(baseline: float, mde: float, alpha: float, power: float) -> int:
    """Observations per arm for a two-sided test of two proportions to find a change of
    `mde` from `baseline` with probability `power` at false-positive rate `alpha`."""
    p1 = min(max(baseline, 1e-6), 1 - 1e-6)
    p2 = min(max(p1 + mde, 1e-6), 1 - 1e-6)
    if p2 == p1:
        p2 = min(max(p1 - mde, 1e-6), 1 - 1e-6)
    za, zb = _quantile(1 - alpha / 2), _quantile(power)
    mean = (p1 + p2) / 2
    top = za * math.sqrt(2 * mean * (1 - mean)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(top**2 / (p2 - p1) ** 2)


def required_per_arm_means(sd: float, mde: float, alpha: float, power: float) -> int:
    """The same for a difference of means with standard deviation `sd` in each arm."""
    za, zb = _quantile(1 - alpha / 2), _quantile(power)
    return math.ceil(2 * ((za + zb) * sd / mde) ** 2)


@dataclass(frozen=True)
class Result:
    """What a test concluded about arm B against arm A (the control)."""

    status: str
    """`collecting` (not enough data to decide), `significant` or `no_difference`."""
    mean_a: float | None
    mean_b: float | None
    n_a: int
    n_b: int
    difference: float | None
    """mean_b - mean_a over the observations the test used."""
    p_value: float | None
    interval: tuple[float, float] | None
    """Confidence interval of the difference at 1 - alpha (fixed horizon only)."""
    required_per_arm: int | None
    """Fixed horizon: the sample size per arm the verdict waits for."""

    def as_dict(self) -> dict:
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval else None
        return out


def fixed_horizon(a: list[float], b: list[float], *, alpha: float, power: float, mde: float,
                  binary: bool, baseline: float | None = None) -> Result:
    """A fixed-horizon two-sided z-test on the first `required` observations of each arm."""
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if binary:
        base = baseline if baseline is not None else (float(xa.mean()) if len(xa) else 0.5)
        required = required_per_arm(base, mde, alpha, power)
    else:
        if len(xa) < MIN_PER_ARM or len(xb) < MIN_PER_ARM:
            return _collecting(xa, xb, None)
        sd = float(np.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)) or 1e-12
        required = required_per_arm_means(sd, mde, alpha, power)
    if len(xa) < required or len(xb) < required:
        return _collecting(xa, xb, required)
    xa, xb = xa[:required], xb[:required]
    difference = float(xb.mean() - xa.mean())
    if binary:
        pooled = (xa.sum() + xb.sum()) / (2 * required)
        se_test = math.sqrt(max(pooled * (1 - pooled) * 2 / required, 1e-18))
    else:
        se_test = math.sqrt(max(xa.var(ddof=1) / required + xb.var(ddof=1) / required, 1e-18))
    se = math.sqrt(max(xa.var(ddof=1) / required + xb.var(ddof=1) / required, 1e-18))
    p_value = math.erfc(abs(difference) / se_test / math.sqrt(2))  # 2 * upper tail
    half = _quantile(1 - alpha / 2) * se
    return Result("significant" if p_value < alpha else "no_difference",
                  float(xa.mean()), float(xb.mean()), required, required, difference, p_value,
                  (difference - half, difference + half), required)


def sequential(a: list[tuple[float, float]], b: list[tuple[float, float]], *, alpha: float,
               mde: float) -> Result:
    """mSPRT over the observations `(time, value)` of both arms in arrival order."""
    times = np.array([t for t, _ in a] + [t for t, _ in b], float)
    values = np.array([v for _, v in a] + [v for _, v in b], float)
    in_b = np.array([False] * len(a) + [True] * len(b))
    order = np.argsort(times, kind="stable")
    values, in_b = values[order], in_b[order]
    n_b = np.cumsum(in_b)
    n_a = np.arange(1, len(values) + 1) - n_b
    sum_a, sum_b = np.cumsum(np.where(in_b, 0, values)), np.cumsum(np.where(in_b, values, 0))
    sq_a = np.cumsum(np.where(in_b, 0, values**2))
    sq_b = np.cumsum(np.where(in_b, values**2, 0))
    ready = (n_a >= MIN_PER_ARM) & (n_b >= MIN_PER_ARM)
    if not ready.any():
        xa = np.array([v for _, v in a], float)
        xb = np.array([v for _, v in b], float)
        return _collecting(xa, xb, None)
    na, nb = n_a[ready].astype(float), n_b[ready].astype(float)
    mean_a, mean_b = sum_a[ready] / na, sum_b[ready] / nb
    var_a = np.maximum((sq_a[ready] - na * mean_a**2) / np.maximum(na - 1, 1), 0)
    var_b = np.maximum((sq_b[ready] - nb * mean_b**2) / np.maximum(nb - 1, 1), 0)
    # a variance of 0 (every answer right so far) would make any difference infinitely
    # significant: floor it at what one observation of the other kind would give
    floor_a, floor_b = 1 / (4 * na), 1 / (4 * nb)
    v = np.maximum(var_a, floor_a) / na + np.maximum(var_b, floor_b) / nb
    tau2 = mde**2
    theta = mean_b - mean_a
    log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * theta**2 / (2 * v * (v + tau2))
    best = float(log_lr.max())
    p_value = float(min(1.0, math.exp(-best)))
    last = -1
    return Result("significant" if p_value < alpha else "collecting",
                  float(mean_a[last]), float(mean_b[last]), int(na[last]), int(nb[last]),
                  float(theta[last]), p_value, None, None)


def _collecting(xa: np.ndarray, xb: np.ndarray, required: int | None) -> Result:
    mean_a = float(xa.mean()) if len(xa) else None
    mean_b = float(xb.mean()) if len(xb) else None
    difference = mean_b - mean_a if mean_a is not None and mean_b is not None else None
    return Result("collecting", mean_a, mean_b, len(xa), len(xb), difference, None, None,
                  required)
