"""Reading an endpoint's request and feedback logs."""

from __future__ import annotations

import json

from mlform.ml.serving.traffic import read_traffic


def write(path, *records, tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def request(request_id: str, t: float, instances, predictions, variant="champion") -> dict:
    return {"t": t, "id": request_id, "variant": variant, "model": "local://models/m/1",
            "features": ["x", "colour"], "instances": instances, "predictions": predictions}


def test_rotated_rows_come_first_and_a_shadow_copy_counts_once(tmp_path):
    write(tmp_path / "requests.1.jsonl", request("a", 1.0, [[1.0, "red"]], [0]))
    write(tmp_path / "requests.jsonl",
          request("b", 2.0, [[2.0, "blue"], [3.0, "red"]], [1, 0]),
          request("b", 2.0, [[2.0, "blue"], [3.0, "red"]], [0, 0], variant="shadow"),
          tail='{"t": 3.0, "id": "c", "feat')  # the line being written as we read
    write(tmp_path / "feedback.jsonl", {"t": 4.0, "id": "b", "labels": [1, 1]})
    traffic = read_traffic(tmp_path)
    assert traffic.features.values.tolist() == [[1.0, "red"], [2.0, "blue"], [3.0, "red"]]
    assert traffic.predictions == [0, 1, 0]
    assert traffic.labels == [None, 1, 1]
    assert traffic.times == [1.0, 2.0, 2.0]


def test_requests_with_other_features_are_aligned_by_name(tmp_path):
    wider = {**request("b", 2.0, [[2.0, "blue", 7]], [1]), "features": ["x", "colour", "size"]}
    write(tmp_path / "requests.jsonl", request("a", 1.0, [[1.0, "red"]], [0]), wider)
    frame = read_traffic(tmp_path).features
    assert list(frame.columns) == ["x", "colour", "size"]
    assert frame["size"].isna().tolist() == [True, False]


def test_no_log_is_no_traffic(tmp_path):
    assert len(read_traffic(tmp_path)) == 0


def test_feedback_with_more_labels_than_instances_keeps_the_rows_aligned(tmp_path):
    # /feedback cannot know how many instances the request had; extra labels belong to none
    write(tmp_path / "requests.jsonl", request("a", 1.0, [[1.0, "red"]], [0]),
          request("b", 2.0, [[2.0, "blue"]], [1]))
    write(tmp_path / "feedback.jsonl", {"t": 3.0, "id": "a", "labels": [1, 0, 1]})
    traffic = read_traffic(tmp_path)
    assert traffic.labels == [1, None]
    assert len(traffic.labels) == len(traffic.predictions) == len(traffic.features)
