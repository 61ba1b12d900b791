import pytest
import torch
from mlform.ml.artifact import load_predictor, save_model

META = {"task": "classification", "features": ["amount", "country"], "target": "fraud",
        "classes": ["no", "yes"],
        "preprocessing": {"amount": {"kind": "numeric", "mean": 10.0, "std": 5.0},
                          "country": {"kind": "categorical", "encoding": "onehot",
                                      "categories": ["de", "fr"]}}}


def network():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


@pytest.fixture
def predictor(tmp_path):
    save_model(tmp_path, network(), META)
    return load_predictor(tmp_path)


def test_a_saved_model_predicts_like_the_network(predictor):
    x = torch.tensor([[(20.0 - 10.0) / 5.0, 0.0, 1.0]])
    expected = torch.softmax(network()(x), dim=1)[0].tolist()
    assert predictor.predict_proba([[20.0, "fr"]])[0] == pytest.approx(expected, abs=1e-6)
    assert predictor.predict([{"amount": 20.0, "country": "fr", "id": 7}]) == \
        [META["classes"][int(torch.tensor(expected).argmax())]]
    assert (predictor.features, predictor.task, predictor.classes) == \
        (["amount", "country"], "classification", ["no", "yes"])
    assert set(predictor.meta["framework"]) == {"python", "torch", "numpy"}


def test_a_batch_is_one_forward_pass(predictor):
    calls = []
    predictor.network.register_forward_hook(lambda *args: calls.append(1))
    assert len(predictor.predict([[float(i), "de"] for i in range(50)])) == 50
    assert calls == [1]


def test_missing_and_unknown_values_are_encoded_not_rejected(predictor):
    assert len(predictor.predict([[None, "xx"], [1.0, None]])) == 2


def test_regression_undoes_target_scaling(tmp_path):
    linear = torch.nn.Linear(1, 1)
    with torch.no_grad():
        linear.weight.fill_(2.0)
        linear.bias.fill_(0.0)
    save_model(tmp_path, linear, {"task": "regression", "features": ["x"], "target": "y",
                                  "target_scaling": {"mean": 100.0, "std": 10.0}})
    predictor = load_predictor(tmp_path)
    assert predictor.predict([[1.5]]) == pytest.approx([130.0])
    with pytest.raises(ValueError, match="predict_proba needs a classification model"):
        predictor.predict_proba([[1.5]])


@pytest.mark.parametrize("instances, message", [
    ([[1.0]], r"instance 0 has 1 values; expected 2 \(amount, country\)"),
    ([[1.0, "fr"], ["lots", "fr"]], "feature 'amount' is numeric: instance 1 has 'lots', "
                                    "expected a number"),
    ([{"amount": 1.0}], "instance 0 lacks feature\\(s\\) 'country'"),
    ([[1.0, "fr"], {"amount": 1.0, "country": "fr"}], "instance 1 is not a list of values"),
    ("amount", "instances must be a list of lists or a list of objects"),
], ids=["too-few-values", "not-a-number", "missing-key", "mixed", "not-a-list"])
def test_bad_input_is_a_clear_value_error(predictor, instances, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(instances)


@pytest.mark.parametrize("meta, message", [
    ({**META, "task": "ranking"}, "'task' must be one of classification, regression"),
    ({**META, "classes": ["only"]}, "needs 'classes'"),
    ({**META, "features": []}, "'features' must be a non-empty list"),
    ({**META, "preprocessing": {"age": {"kind": "numeric"}}}, "names 'age', which is not"),
], ids=["task", "classes", "features", "preprocessing"])
def test_save_model_refuses_unusable_meta(tmp_path, meta, message):
    with pytest.raises(ValueError, match=message):
        save_model(tmp_path, network(), meta)


def test_loading_a_directory_without_a_model_says_so(tmp_path):
    with pytest.raises(ValueError, match="is not a model artifact: model.json is missing"):
        load_predictor(tmp_path)


NUMERIC = {"task": "classification", "features": ["a", "b", "c"], "target": "y",
           "classes": [0, 1],
           "preprocessing": {"a": {"kind": "numeric", "mean": 1.0, "std": 2.0},
                             "b": {"kind": "numeric", "mean": -3.0, "std": 0.5},
                             "c": {"kind": "numeric", "mean": 0.0, "std": 1.0}}}


def test_numeric_rows_take_the_matrix_path_with_the_same_answers(tmp_path):
    torch.manual_seed(1)
    save_model(tmp_path, torch.nn.Linear(3, 2), NUMERIC)
    predictor = load_predictor(tmp_path)
    rows = [[0.5, -2.0, 3.0], [None, 1.0, -1.0], [10.0, -3.0, 0.0]]
    as_objects = [dict(zip(NUMERIC["features"], r, strict=True)) for r in rows]
    assert predictor._fast_matrix(rows) is not None
    assert predictor._fast_matrix(as_objects) is None
    for fast, general in zip(predictor.predict_proba(rows), predictor.predict_proba(as_objects),
                             strict=True):
        assert fast == pytest.approx(general)
    with pytest.raises(ValueError, match="instance 1 has 2 values; expected 3"):
        predictor.predict([[1.0, 2.0, 3.0], [1.0, 2.0]])


@pytest.mark.parametrize("outputs", [1, 2], ids=["one logit", "two logits"])
def test_labels_are_the_most_probable_class(tmp_path, outputs):
    torch.manual_seed(2)
    save_model(tmp_path, torch.nn.Linear(3, outputs), NUMERIC)
    predictor = load_predictor(tmp_path)
    rows = torch.randn(200, 3).mul(4).tolist()
    probabilities = predictor.predict_proba(rows)
    labels = predictor.predict(rows)
    assert labels == [NUMERIC["classes"][max(range(2), key=p.__getitem__)]
                      for p in probabilities]
    assert set(labels) == {0, 1}


def test_a_network_of_another_width_than_its_features_is_refused(tmp_path):
    """The loaded network skips torch's per-call argument check (the predictor builds
    the matrix itself); its shape guard still refuses a matrix of the wrong width."""
    save_model(tmp_path, torch.nn.Linear(3, 2), NUMERIC)
    predictor = load_predictor(tmp_path)
    assert predictor.network.validate_inputs is False
    with pytest.raises(Exception, match="== 3"):
        predictor.network(torch.zeros(1, 4))
