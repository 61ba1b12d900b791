"""A built-in trainer's network is stored as weights and layer widths (weights.npz),
not as a `torch.export` program: saved and loaded in milliseconds, predicting the
same; artifacts written as programs by earlier releases keep loading."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlform.ml.artifact import load_predictor, save_model
from mlform.ml.network import build

META = {"task": "classification", "features": ["a", "b", "c"], "target": "y",
        "classes": ["no", "yes"],
        "preprocessing": {f: {"kind": "numeric", "mean": 1.0, "std": 2.0} for f in "abc"}}
ROWS = [[0.5, -1.0, 3.0], [2.0, 0.0, -4.5], [None, 1.0, 1.0]]


def layers(seed: int = 0):
    torch.manual_seed(seed)
    return build([3, 8, 4, 2])


def test_a_trained_network_is_stored_as_weights_and_predicts_the_same(tmp_path):
    network = layers()
    save_model(tmp_path, network, META)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "weights.npz"]
    assert json.loads((tmp_path / "model.json").read_text())["network"] == \
        {"kind": "mlp", "activation": "relu", "layers": [3, 8, 4, 2]}
    predictor = load_predictor(tmp_path)
    x = torch.tensor([[-0.25, -1.0, 1.0], [0.5, -0.5, -2.75], [0.0, 0.0, 0.0]])
    expected = torch.softmax(network(x), dim=1).tolist()
    assert np.allclose(predictor.predict_proba(ROWS), expected, atol=1e-7)


def test_an_artifact_exported_by_an_earlier_release_still_loads(tmp_path):
    """Earlier releases exported every network with torch.export (model.pt2)."""
    network = layers()
    plain = torch.nn.Sequential(*network)  # not a LayerStack: exported as a program
    save_model(tmp_path / "old", plain, META)
    save_model(tmp_path / "new", network, META)
    assert (tmp_path / "old" / "model.pt2").is_file()
    assert "network" not in json.loads((tmp_path / "old" / "model.json").read_text())
    assert np.allclose(load_predictor(tmp_path / "old").predict_proba(ROWS),
                       load_predictor(tmp_path / "new").predict_proba(ROWS), atol=1e-7)


def test_saving_and_loading_a_trained_network_does_not_export():
    """Exporting imported torch._dynamo and traced the network: seconds of every run."""
    code = ("import sys, tempfile, torch\n"
            "from mlform.ml.artifact import load_predictor, save_model\n"
            "from mlform.ml import trainers\n"
            f"meta = {META!r}\n"
            "d = tempfile.mkdtemp()\n"
            "save_model(d, trainers.build_network(3, (8,), 2), meta)\n"
            "load_predictor(d).predict([[1.0, 2.0, 3.0]])\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_weights_holding_objects_are_refused_without_unpickling(tmp_path):
    save_model(tmp_path, layers(), META)
    with open(tmp_path / "weights.npz", "wb") as f:
        np.savez(f, **{"0.weight": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle=False"):
        load_predictor(tmp_path)


@pytest.mark.parametrize(("change", "message"), [
    pytest.param({"layers": [3, 9, 4, 2]}, "weights.npz does not fit the network in model.json",
                 id="other-widths"),
    pytest.param({"kind": "transformer"}, "unknown network", id="unknown-kind"),
    pytest.param({"layers": [3]}, "at least two layer widths", id="one-width"),
])
def test_a_description_that_does_not_fit_the_weights_is_an_error(tmp_path, change, message):
    save_model(tmp_path, layers(), META)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["network"].update(change)
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        load_predictor(tmp_path)


def test_a_missing_weights_file_is_named(tmp_path):
    save_model(tmp_path, layers(), META)
    (tmp_path / "weights.npz").unlink()
    with pytest.raises(ValueError, match="weights.npz is missing"):
        load_predictor(tmp_path)
