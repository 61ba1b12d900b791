"""The linear built-in trainers reach the optimum of their loss (not a few Adam
epochs): on the quick start's data, scikit-learn's own solvers are the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlform.engine.scaffold import FEATURES, write_sample_data
from mlform.ml import trainers
from mlform.ml.artifact import encode
from mlform.ml.metrics import binary_auc
from mlform.ml.split import split


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`mlform init`'s sample data, split as a job with default seed and test_size."""
    path = write_sample_data(Path(tmp_path_factory.mktemp("data")) / "transactions.csv")
    return split(pd.read_csv(path), "is_fraud", 0.2, 0, stratify=True)


def _logits(network, frame, meta):
    import torch

    with torch.no_grad():
        return network(torch.from_numpy(encode(frame, meta))).numpy().astype(np.float64)


def test_logistic_regression_with_defaults_scores_as_scikit_learn_does(sample):
    """Three epochs of Adam (the old trainer) left the held-out AUC at 0.81 here; the
    optimum is 0.88."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train_rows, holdout = sample
    network, meta = trainers.train("logistic_regression", {"epochs": 3}, train_rows,
                                   FEATURES, "is_fraud", seed=0)
    logits = _logits(network, holdout, meta)
    ours = binary_auc(holdout["is_fraud"] == 1, logits[:, 1] - logits[:, 0])

    scaler = StandardScaler().fit(train_rows[FEATURES])
    reference = LogisticRegression().fit(scaler.transform(train_rows[FEATURES]),
                                         train_rows["is_fraud"])
    theirs = binary_auc(holdout["is_fraud"] == 1, reference.decision_function(
        scaler.transform(holdout[FEATURES])))
    assert ours == pytest.approx(theirs, abs=0.005)
    assert ours > 0.85


def test_logistic_regression_reaches_the_penalised_optimum(sample):
    """With weight_decay, the weights are scikit-learn's for the same penalty: the two
    softmax rows split its one weight vector, so C = 2 / (rows * weight_decay)."""
    from sklearn.linear_model import LogisticRegression

    train_rows, _ = sample
    decay = 0.01
    network, meta = trainers.train("logistic_regression", {"weight_decay": decay},
                                   train_rows, FEATURES, "is_fraud", seed=0)
    x = encode(train_rows, meta)
    reference = LogisticRegression(C=2 / (len(x) * decay), tol=1e-10, max_iter=10_000).fit(
        x, train_rows["is_fraud"])
    weight = network[-1].weight.detach().numpy().astype(np.float64)
    assert weight[1] - weight[0] == pytest.approx(reference.coef_[0], abs=1e-4)


def test_linear_regression_is_the_least_squares_fit(sample):
    from sklearn.linear_model import LinearRegression

    train_rows, _ = sample
    target = "amount"
    features = [f for f in FEATURES if f != target]
    network, meta = trainers.train("linear_regression", {"epochs": 1, "lr": 1e-6}, train_rows,
                                   features, target, seed=0)
    x = encode(train_rows, meta)
    scaling = meta["target_scaling"]
    ours = _logits(network, train_rows, meta)[:, 0] * scaling["std"] + scaling["mean"]
    theirs = LinearRegression().fit(x, train_rows[target]).predict(x)
    assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-3)


def test_linear_models_give_the_same_weights_on_every_run_and_report_one_pass(sample):
    train_rows, _ = sample
    reports: list[tuple[int, int, float]] = []
    first, _ = trainers.train("logistic_regression", {}, train_rows, FEATURES, "is_fraud",
                              seed=3, on_epoch=lambda *r: reports.append(r))
    second, _ = trainers.train("logistic_regression", {}, train_rows, FEATURES, "is_fraud",
                               seed=3)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert a.equal(b)
    assert [r[:2] for r in reports] == [(1, 1)] and 0 < reports[0][2] < 0.7
