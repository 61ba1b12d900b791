"""Property: whatever a user writes, `mlform validate` answers with exit 0 or 1, never a crash."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlform.engine.cli.main import main

VALID = {
    "version": 1,
    "stack": "fuzz",
    "providers": {"null": {"latency": 0}},
    "variables": {"min_auc": {"type": "number", "default": 0.8},
                  "token": {"type": "string", "default": "t", "sensitive": True}},
    "resources": {
        "data": {"type": "dataset", "source": "data.csv",
                 "columns": {"y": {"type": "int"}}, "quality": {"min_rows": 1}},
        "train": {"type": "training_job", "dataset": "${data.uri}",
                  "algorithm": "mlp_classifier", "target": "y",
                  "hyperparameters": {"epochs": 1, "note": "x-${var.token}"},
                  "timeout": "5m", "lifecycle": {"ignore_changes": ["seed"]}},
        "m": {"type": "model", "artifact": "${train.artifact}",
              "gates": [{"metric": "auc", "min": "${var.min_auc}"}]},
        "ep": {"type": "endpoint", "variants": {"a": {"model": "${m.uri}", "weight": 100}},
               "rollout": {"strategy": "canary", "steps": [10, 100]}, "depends_on": ["data"]},
    },
    "outputs": {"url": {"value": "${ep.url}"}},
}

GARBAGE = st.sampled_from([
    "${", "}", "${}", "${var.}", "${a.b", "$${x}", "${ep.url}", "${var.nope}", "${ep.ep.ep}",
    "\t", ": ", "- ", "{", "[", "]", "'", '"', "&a", "*a", "!!python/object:os.system", "%YAML",
    "\u00e9\u4e2d\U0001f600", "\x00", "\ufeff", "---", "? ", "|", ">", "#", "\n  x: 1",
]) | st.text(max_size=12)

SCALARS = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | GARBAGE
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6) | GARBAGE, inner, max_size=3),
                      max_leaves=8)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(VALID) if p]


@st.composite
def structural_mutation(draw) -> str:
    """Delete a key, change a value's type, add a garbage key, or nest deeply."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = data
        try:
            for seg in path[:-1]:
                parent = parent[seg]
            last = path[-1]
            parent[last]  # noqa: B018 - the path may be gone after an earlier mutation
        except (KeyError, IndexError, TypeError):
            continue
        kind = draw(st.sampled_from(["delete", "replace", "add", "nest"]))
        if kind == "delete":
            del parent[last]
        elif kind == "replace":
            parent[last] = draw(VALUES)
        elif kind == "add" and isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=8) | GARBAGE)] = draw(VALUES)
        elif kind == "nest":
            deep = parent[last]
            for _ in range(draw(st.integers(1, 60))):
                deep = {"a": deep} if draw(st.booleans()) else [deep]
            parent[last] = deep
    return json.dumps(data, ensure_ascii=draw(st.booleans()))


@st.composite
def text_mutation(draw) -> str:
    """Edit the YAML text itself: insert garbage, duplicate or drop a line."""
    lines = _as_yaml(VALID).splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["insert", "duplicate", "drop"]))
        if kind == "insert":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(GARBAGE) + lines[i][at:]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif len(lines) > 1:
            del lines[i]
    return "\n".join(lines) + "\n"


def _as_yaml(data) -> str:
    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML().dump(data, out)
    return out.getvalue()


def _validate(stack: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(["validate", str(stack)])
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue()
    raise AssertionError("main() returned without exiting")


def test_the_unmutated_spec_is_valid(tmp_path):
    (tmp_path / "mlform.yaml").write_text(_as_yaml(VALID))
    assert _validate(tmp_path) == (0, "The stack 'fuzz' is valid: 4 resources, 1 provider(s).\n")


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=structural_mutation() | text_mutation())
def test_any_spec_gets_an_answer_not_a_crash(spec):
    with tempfile.TemporaryDirectory() as d:
        Path(d, "mlform.yaml").write_text(spec, encoding="utf-8", errors="surrogatepass")
        code, output = _validate(Path(d))
    assert code in (0, 1), output
    assert "Traceback" not in output
    assert "internal error" not in output, output
    if code == 1:
        assert output.startswith("error: "), output
