import json

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.model import FORMAT_VERSION, ResourceState, State
from mlform.engine.state.statefile import decode, encode, resource_from_json, resource_to_json
from mlform.engine.values import Secret, StoredSecret, Unknown

SOURCE = ".mlform/state.json"
RESTORE = ("help: restore the state before the last write: copy '.mlform/state.json.backup' "
           "over '.mlform/state.json'")


def sample_state() -> State:
    model = ResourceState(
        name="model", type="model", provider="local", provider_type="local",
        id="local://models/model", inputs={"epochs": 3, "token": Secret("hunter2-token"),
                                           "layers": [8, Secret("s3cr3t-layer")]},
        outputs={"uri": "local://models/model/1", "pending": Unknown("train.artifact")},
        dependencies=("data",), status="ready", idempotency_key=None,
        updated_at="2024-05-01T12:00:00Z")
    data = ResourceState(name="data", type="dataset", provider="local", id=None, inputs={},
                         outputs={}, status="pending", idempotency_key="key-1")
    return State(lineage="lin-1", serial=7, stack="churn", salt="salt0123456789ab",
                 resources={"model": model, "data": data},
                 outputs={"api_key": Secret("plain-api-key"), "url": "http://127.0.0.1:1"})


def test_round_trip_keeps_every_field_and_turns_secrets_into_digests():
    state = sample_state()
    back = decode(encode(state), SOURCE)

    model = back.resources["model"]
    assert (back.lineage, back.serial, back.stack, back.salt, back.format_version) == (
        "lin-1", 7, "churn", "salt0123456789ab", FORMAT_VERSION)
    assert model.inputs["epochs"] == 3
    assert model.inputs["token"] == StoredSecret(Secret("hunter2-token").digest(state.salt))
    assert Secret("hunter2-token").matches(model.inputs["token"].digest)
    assert isinstance(model.inputs["layers"][1], StoredSecret)
    assert model.outputs["pending"] == Unknown("train.artifact")
    assert model.dependencies == ("data",)
    assert model.updated_at == "2024-05-01T12:00:00Z"
    assert back.resources["data"] == state.resources["data"]
    assert isinstance(back.outputs["api_key"], StoredSecret)
    assert back.outputs["url"] == "http://127.0.0.1:1"


def test_encoding_a_decoded_state_gives_the_same_bytes():
    data = encode(sample_state())
    assert encode(decode(data, SOURCE)) == data


def test_no_secret_reaches_the_bytes_in_plain_text():
    data = encode(sample_state())
    for plain in (b"hunter2-token", b"s3cr3t-layer", b"plain-api-key"):
        assert plain not in data
    assert data.count(b'"$sensitive": "hmac-sha256:salt0123456789ab:') == 3


def test_layout_is_sorted_json_with_one_line_per_resource_and_a_trailing_newline():
    data = encode(sample_state())
    doc = json.loads(data)
    assert data.endswith(b"}\n")
    lines = data.decode().splitlines()
    assert [line.split(":")[0].strip() for line in lines if line.startswith('  "')] == \
        [json.dumps(k) for k in sorted(doc)]
    resource_lines = [line for line in lines if line.startswith('    "')]
    assert len(resource_lines) == len(doc["resources"])
    assert [json.loads(line.split(": ", 1)[0]) for line in resource_lines] == \
        sorted(doc["resources"])
    assert set(doc) == {"format_version", "lineage", "serial", "stack", "salt", "resources",
                        "outputs"}
    assert set(doc["resources"]["model"]) == {
        "type", "provider", "provider_type", "id", "inputs", "outputs", "dependencies",
        "status", "idempotency_key", "updated_at"}


def test_resource_helpers_round_trip():
    res = sample_state().resources["data"]
    assert resource_from_json("data", resource_to_json(res, "salt")) == res


def test_an_unprepared_secret_is_refused_rather_than_written():
    from mlform.engine.state.statefile import json_default

    with pytest.raises(TypeError, match="must pass through to_storable"):
        json_default(Secret("x"))


def valid_doc() -> dict:
    return json.loads(encode(sample_state()))


def mutated(change) -> bytes:
    doc = valid_doc()
    change(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("data, expected", [
    pytest.param(b'{\n  "lineage": "x",\n  oops\n}\n',
                 "error: state file '.mlform/state.json' is not valid JSON: expecting property "
                 "name enclosed in double quotes\n  --> .mlform/state.json:3:3\n" + RESTORE,
                 id="corrupt-json-names-line-and-column"),
    pytest.param(b'{"lineage": "x", "serial": ',
                 "error: state file '.mlform/state.json' is not valid JSON: expecting value\n"
                 "  --> .mlform/state.json:1:28\n" + RESTORE,
                 id="truncated-file"),
    pytest.param(b"\xff\xfe{}",
                 "error: state file '.mlform/state.json' is not UTF-8 text\n"
                 "  = byte 0: invalid start byte\n" + RESTORE,
                 id="binary-garbage"),
    pytest.param(b"[1, 2]",
                 "error: state file '.mlform/state.json' must hold a JSON object\n" + RESTORE,
                 id="not-an-object"),
    pytest.param(mutated(lambda d: d.update(format_version=FORMAT_VERSION + 1)),
                 f"error: state file '.mlform/state.json' has format version "
                 f"{FORMAT_VERSION + 1}; this mlform reads version {FORMAT_VERSION}\n"
                 "  = a newer mlform wrote this state\n"
                 "help: upgrade mlform (pip install --upgrade mlform) to read and change it",
                 id="newer-format-version"),
    pytest.param(mutated(lambda d: d.pop("lineage")),
                 "error: state file '.mlform/state.json' is invalid: lineage: missing\n"
                 + RESTORE,
                 id="missing-top-level-field"),
    pytest.param(mutated(lambda d: d.update(serial="7")),
                 "error: state file '.mlform/state.json' is invalid: serial: must be an "
                 "integer\n" + RESTORE,
                 id="serial-of-wrong-type"),
    pytest.param(mutated(lambda d: d.update(serial=-1)),
                 "error: state file '.mlform/state.json' is invalid: serial: must be at "
                 "least 0, not -1\n" + RESTORE,
                 id="negative-serial"),
    pytest.param(mutated(lambda d: d["resources"]["model"].pop("inputs")),
                 "error: state file '.mlform/state.json' is invalid: resources.model.inputs: "
                 "missing\n" + RESTORE,
                 id="missing-resource-field"),
    pytest.param(mutated(lambda d: d["resources"]["data"].update(status="broken")),
                 "error: state file '.mlform/state.json' is invalid: resources.data.status: "
                 "'broken' is not one of 'ready', 'pending', 'tainted'\n" + RESTORE,
                 id="unknown-status"),
])
def test_damaged_or_newer_files_are_explained(data, expected):
    with pytest.raises(MlformError) as caught:
        decode(data, SOURCE, SOURCE + ".backup")
    assert caught.value.render() == expected


def test_a_damaged_file_without_a_backup_says_what_to_do_instead():
    with pytest.raises(MlformError) as caught:
        decode(b"[1, 2]", SOURCE)
    assert caught.value.render() == (
        "error: state file '.mlform/state.json' must hold a JSON object\n"
        "help: there is no backup of it to restore: fix the problem in '.mlform/state.json' "
        "by hand (it is JSON), or move it aside and adopt each live resource again with "
        "'mlform import NAME ID'")


def test_every_problem_is_reported_at_once():
    doc = valid_doc()
    del doc["stack"]
    doc["resources"]["model"]["dependencies"] = ["data", 3]
    with pytest.raises(MlformError) as caught:
        decode(json.dumps(doc).encode(), SOURCE)
    assert [d.summary for d in caught.value.diagnostics] == [
        "state file '.mlform/state.json' is invalid: stack: missing",
        "state file '.mlform/state.json' is invalid: resources.model.dependencies: must be a "
        "list of resource names",
    ]
