"""mlform.ml.split: the features and held-out rows every provider trains with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlform.ml.split import InputError, select_features, split, stratifies


def frame(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"amount": rng.normal(size=rows), "age": rng.integers(18, 80, rows),
                         "city": rng.choice(["x", "y"], rows),
                         "label": np.r_[np.zeros(rows - 8, int), np.ones(8, int)]})


@pytest.mark.parametrize(("target", "features", "exclude", "expected"), [
    pytest.param("label", None, None, ["amount", "age", "city"], id="all-but-target"),
    pytest.param("label", None, ["city"], ["amount", "age"], id="exclude-drops-columns"),
    pytest.param("label", ["city", "amount"], ["city"], ["city", "amount"],
                 id="features-given-win-over-exclude-and-keep-their-order"),
    pytest.param("amount", None, None, ["age", "city", "label"], id="another-target"),
])
def test_select_features(target, features, exclude, expected):
    assert select_features(frame(), target, features, exclude) == expected


@pytest.mark.parametrize(("target", "features", "message"), [
    pytest.param("fraud", None, "target column 'fraud' is not in the data "
                 "(columns: amount, age, city, label)", id="unknown-target"),
    pytest.param("label", ["amount", "zip", "iban"], "feature column(s) 'zip', 'iban' not in "
                 "the data (columns: amount, age, city, label)", id="unknown-features"),
    pytest.param("label", ["amount", "label"], "the target 'label' cannot also be a feature",
                 id="target-as-feature"),
])
def test_select_features_names_what_does_not_fit(target, features, message):
    with pytest.raises(InputError) as caught:
        select_features(frame(), target, features)
    assert str(caught.value) == message


def test_the_same_seed_holds_out_the_same_rows_and_another_seed_others():
    data = frame().assign(row=range(40))
    train_a, held_a = split(data, "label", 0.25, 7, stratify=False)
    train_b, held_b = split(data, "label", 0.25, 7, stratify=False)
    _, held_c = split(data, "label", 0.25, 8, stratify=False)
    assert held_a["row"].tolist() == held_b["row"].tolist()
    assert train_a["row"].tolist() == train_b["row"].tolist()
    assert held_a["row"].tolist() != held_c["row"].tolist()
    assert sorted(train_a["row"].tolist() + held_a["row"].tolist()) == list(range(40))
    assert len(held_a) == 10
    assert held_a.index.tolist() == list(range(10))  # renumbered, as the trainers expect


def test_a_stratified_split_keeps_the_class_proportions():
    data = frame()
    _, plain = split(data, "label", 0.25, 0, stratify=False)
    _, held = split(data, "label", 0.25, 0, stratify=True)
    assert plain["label"].sum() == 0  # this seed holds out no positive unless stratified
    assert held["label"].sum() == 2  # 8 positives of 40, a quarter held out


def test_a_class_with_one_row_falls_back_to_a_plain_split():
    data = frame().assign(label=[0] * 39 + [1])
    train_rows, held = split(data, "label", 0.25, 3, stratify=True)
    assert len(train_rows) + len(held) == 40


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1])
def test_a_split_that_leaves_a_side_empty_is_refused(test_size):
    with pytest.raises(InputError, match=f"test_size must be between 0 and 1, not {test_size}"):
        split(frame(), "label", test_size, 0, stratify=False)


@pytest.mark.parametrize(("algorithm", "expected"), [
    pytest.param("mlp_classifier", True, id="classifier"),
    pytest.param("logistic_regression", True, id="linear-classifier"),
    pytest.param("mlp_regressor", False, id="regressor"),
    pytest.param(None, False, id="custom-script"),
])
def test_stratifies(algorithm, expected):
    assert stratifies(algorithm) is expected


def _labelled(rows: int, weights: list[float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.choice([f"c{i}" for i in range(len(weights))], rows, p=weights)
    return pd.DataFrame({"x": rng.normal(size=rows), "row": range(rows), "label": labels})


@pytest.mark.parametrize(("rows", "weights", "test_size", "stratify"), [
    pytest.param(40, [0.5, 0.5], 0.25, False, id="plain"),
    pytest.param(1001, [0.9, 0.1], 0.2, False, id="plain-rounding-up"),
    pytest.param(1001, [0.9, 0.1], 0.2, True, id="stratified-binary"),
    pytest.param(97, [0.5, 0.3, 0.2], 0.33, True, id="stratified-three-classes-with-ties"),
    pytest.param(5000, [0.97, 0.03], 0.1, True, id="stratified-rare-class"),
])
def test_the_rows_are_scikit_learns_train_test_split_for_every_seed(rows, weights, test_size,
                                                                    stratify):
    """Earlier releases split with scikit-learn; the numpy split must hold out the very
    same rows, so a job's held-out data and gate verdicts do not move on upgrade."""
    from sklearn.model_selection import train_test_split

    for seed in range(12):
        data = _labelled(rows, weights, seed)
        train_rows, held = split(data, "label", test_size, seed, stratify)
        want_train, want_held = train_test_split(
            data, test_size=test_size, random_state=seed,
            stratify=data["label"] if stratify else None)
        assert held["row"].tolist() == want_held["row"].tolist()
        assert train_rows["row"].tolist() == want_train["row"].tolist()


def test_split_does_not_import_scikit_learn():
    """Importing scikit-learn cost seconds of every training run's start."""
    import subprocess
    import sys

    code = ("import sys, pandas as pd\n"
            "from mlform.ml.split import split\n"
            "frame = pd.DataFrame({'x': range(20), 'y': [0, 1] * 10})\n"
            "split(frame, 'y', 0.2, 0, True)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
