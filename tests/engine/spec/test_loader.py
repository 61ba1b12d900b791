"""Broken specs through the installed command: exit 1, the real file:line:col, a fix, no traceback."""

from __future__ import annotations

import re

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.spec.loader import load_stack

BASE = """\
version: 1
stack: demo
providers:
  null: {}
variables:
  min_auc: {type: number, default: 0.8}
resources:
  data:
    type: dataset
    source: data.csv
  train:
    type: training_job
    dataset: ${data.uri}
    algorithm: mlp_classifier
    target: y
"""
"""Lines 8-15 hold the resources; cases edit or append to them."""


def _with(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


BOMB = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9 if i else ["lol"] * 9) + "]\n"
               for i in range(9))
"""A "billion laughs" document (about 400 bytes): 9 levels of 9 aliases each stand for 9**9
values. Expanded, the 5th level's first alias passes the bound."""

MODEL = "  m:\n    type: model\n    artifact: ${train.artifact}\n"

CASES = [
    # id, spec text, extra files, command args, location, words in the message
    pytest.param(BASE + "  bad: [1, 2\n", {}, ["validate"], "mlform.yaml:16:8",
                 ["invalid YAML", "flow sequence"],
                 id="yaml-unclosed-bracket"),  # the unclosed '[' is marked, not the end of file
    pytest.param(_with("    source: data.csv", "\tsource: data.csv"), {}, ["validate"],
                 "mlform.yaml:10:1", ["invalid YAML", "tab", "use spaces"],
                 id="tab-indentation"),  # YAML forbids tabs; help says use spaces
    pytest.param(BASE + MODEL + "    tags: {a: ${data.uri}}\n", {}, ["validate"],
                 "mlform.yaml:19:16", ["invalid YAML", "must be quoted"],
                 id="flow-style-unquoted-ref"),  # the contract's named pitfall
    pytest.param(BASE + "resourcez: {}\n", {}, ["validate"], "mlform.yaml:16:1",
                 ["unknown field 'resourcez'", "did you mean 'resources'"],
                 id="unknown-top-level-field"),
    pytest.param(_with("    target: y", "    target: y\n    hyperparamters: {a: 1}"), {},
                 ["validate"], "mlform.yaml:16:5",
                 ["unknown field 'hyperparamters'", "did you mean 'hyperparameters'"],
                 id="unknown-resource-field"),  # typo of a real field gets a suggestion
    pytest.param(_with("    target: y", "    target: y\n    seed: abc"), {}, ["validate"],
                 "mlform.yaml:16:11", ["resources.train.seed", "expected an integer", "'abc'"],
                 id="wrong-type"),
    pytest.param(_with("algorithm: mlp_classifier", "algorithm: random_forest"), {},
                 ["validate"], "mlform.yaml:14:16",
                 ["resources.train.algorithm", "'mlp_classifier'", "random_forest"],
                 id="bad-enum-value"),  # the allowed values are listed
    pytest.param(_with("type: dataset", "type: datset"), {}, ["validate"], "mlform.yaml:9:11",
                 ["unknown resource type 'datset'", "did you mean 'dataset'"],
                 id="unknown-resource-type"),
    pytest.param(_with("${data.uri}", "${dta.uri}"), {}, ["validate"], "mlform.yaml:13:14",
                 ["unknown resource 'dta'", "did you mean 'data'"],
                 id="ref-unknown-resource"),
    pytest.param(_with("${data.uri}", "${data.urx}"), {}, ["validate"], "mlform.yaml:13:14",
                 ["has no attribute 'urx'", "did you mean 'uri'"],
                 id="ref-unknown-attribute"),
    pytest.param(_with("    target: y", "    target: y\n    seed: ${var.min_acu}"), {},
                 ["validate"], "mlform.yaml:16:11",
                 ["undeclared variable 'var.min_acu'", "did you mean 'min_auc'"],
                 id="ref-undeclared-variable"),
    pytest.param(_with("    target: y", '    target: y\n    description: "x ${train.artifact}"'),
                 {}, ["validate"], "mlform.yaml:16:21", ["'train' refers to itself"],
                 id="self-reference"),  # column of the ${ inside the quoted string
    pytest.param(_with("    source: data.csv", "    source: data.csv\n    depends_on: [train]"),
                 {}, ["validate"], "mlform.yaml:12:3",
                 ["dependency cycle", "train -> data -> train", "'data' is at mlform.yaml:8:3"],
                 id="dependency-cycle"),  # every member is named with its place
    pytest.param(_with("    source: data.csv", "    source: data.csv\n    depends_on: [trian]"),
                 {}, ["validate"], "mlform.yaml:11:18",
                 ["unknown resource 'trian'", "did you mean 'train'"],
                 id="depends-on-unknown"),
    pytest.param(_with("min_auc: {type: number, default: 0.8}", "min_auc: {type: number}"), {},
                 ["validate"], "mlform.yaml:6:3",
                 ["no value for required variable 'min_auc'", "MLFORM_VAR_min_auc"],
                 id="missing-required-variable"),
    pytest.param(BASE, {}, ["validate", "--var", "min_auc"], None,
                 ["invalid --var 'min_auc'", "NAME=VALUE"],
                 id="bad-var-syntax"),  # a command-line mistake has no file position
    pytest.param(BASE, {}, ["validate", "--var", "min_acu=0.9"], None,
                 ["undeclared variable 'min_acu'", "did you mean 'min_auc'"],
                 id="var-undeclared"),
    pytest.param(BASE, {"vars.yaml": "- 0.9\n"}, ["validate", "--var-file", "vars.yaml"],
                 "vars.yaml:1:1", ["must be a mapping"],
                 id="var-file-not-mapping"),
    pytest.param(BASE, {"vars.yaml": "min_auc: high\n"}, ["validate", "--var-file", "vars.yaml"],
                 "vars.yaml:1:1", ["variable 'min_auc' from var file", "expected a number"],
                 id="var-file-wrong-type"),  # the value's own file, not the declaration
    pytest.param(_with("    source: data.csv", "    source: data.csv\n    provider: nul"), {},
                 ["validate"], "mlform.yaml:11:15", ["unknown provider 'nul'", "'null'"],
                 id="unknown-provider"),
    pytest.param(_with("providers:", "include: [extra.yaml]\nproviders:"), {}, ["validate"],
                 "mlform.yaml:3:11", ["included file not found: 'extra.yaml'"],
                 id="include-missing"),
    pytest.param(_with("providers:", "include: [more.yaml]\nproviders:"),
                 {"more.yaml": "resources:\n  data:\n    type: dataset\n    source: b.csv\n"},
                 ["validate"], "more.yaml:2:3",
                 ["'data' is defined twice", "first defined at mlform.yaml:9:3"],
                 id="duplicate-resource-across-include"),  # points into the included file
    pytest.param(_with("    target: y", "    target: y\n    timeout: 5 minutes"), {},
                 ["validate"], "mlform.yaml:16:14", ["expected a duration such as 30s"],
                 id="bad-duration"),
    pytest.param(BASE + MODEL + "    gates:\n      - metric: auc\n", {}, ["validate"],
                 "mlform.yaml:20:9", ["gates.0", "needs a 'min' or a 'max'"],
                 id="gate-without-threshold"),
    pytest.param(_with("algorithm: mlp_classifier",
                       "algorithm: mlp_classifier\n    entrypoint: train.py"), {}, ["validate"],
                 "mlform.yaml:12:5", ["exactly one of 'algorithm'", "'entrypoint'"],
                 id="algorithm-and-entrypoint"),
    pytest.param(_with("    target: y", '    target: y\n    description: "x ${data.uri"'), {},
                 ["validate"], "mlform.yaml:16:18", ["unterminated reference"],
                 id="unterminated-reference"),
    pytest.param(_with("    target: y", "    target: y\n    target: z"), {}, ["validate"],
                 "mlform.yaml:16:5", ["duplicate key 'target'", "first written at mlform.yaml:15:5"],
                 id="duplicate-key"),
    pytest.param(_with("${data.uri}", "${data}"), {}, ["validate"], "mlform.yaml:13:14",
                 ["names no attribute"],
                 id="reference-without-attribute"),
    pytest.param(BASE + MODEL + "  ep:\n    type: endpoint\n    variants:\n"
                 "      a: {model: \"${m.uri}\"}\n    logging: {max_bytes: 12 parsecs}\n", {},
                 ["validate"], "mlform.yaml:23:26",
                 ["logging.max_bytes", "byte unit", "such as 64MiB"],
                 id="size-with-an-unknown-unit"),
    pytest.param(BASE, {}, ["plan", "--bogus"], None, ["no such option '--bogus'"],
                 id="unknown-flag"),  # help says where to find the flags
    pytest.param(BASE + BOMB, {}, ["validate"], "mlform.yaml:21:10",
                 ["aliases expand to more than 100,000 values", "'*l4'", "fewer nested aliases"],
                 id="yaml-alias-bomb"),  # refused at the first alias past the bound, at once
    pytest.param(_with("  train:\n", "  train: &t\n") + "    tags: {again: *t}\n", {},
                 ["validate"], "mlform.yaml:16:19", ["recursive yaml alias '*t'"],
                 id="yaml-recursive-alias"),
    pytest.param(_with("    target: y", "    target: y\n    seed: *nowhere"), {}, ["validate"],
                 "mlform.yaml:16:11", ["alias '*nowhere' names no anchor", "define '&nowhere'"],
                 id="yaml-undefined-alias"),
    pytest.param(_with("    target: y", "    target: y\n    seed: " + "7" * 5000), {},
                 ["validate"], "mlform.yaml:16:11",
                 ["number too long: 5,000 characters", "at most 4300 digits"],
                 id="yaml-huge-integer"),
    pytest.param(BASE + "  deep: " + "[" * 300 + "]" * 300 + "\n", {}, ["validate"],
                 "mlform.yaml:16:263", ["nested more than 256 levels"],
                 id="yaml-deep-nesting"),
    pytest.param(BASE + "other: {<<: [1]}\n", {}, ["validate"], "mlform.yaml:16:14",
                 ["'<<' merges a value that is not a mapping"],
                 id="yaml-merge-of-a-scalar"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("spec, files, args, location, words", CASES)
def test_broken_spec_is_reported_at_its_place(null_stack, run_mlform, spec, files, args,
                                               location, words):
    stack = null_stack(spec, **files)
    got = run_mlform(args, stack)
    assert got.returncode == 1, got.stderr
    assert "Traceback" not in got.stderr + got.stdout
    text = got.stderr.lower()
    for word in words:
        assert word.lower() in text, got.stderr
    assert re.search(r"^help: \S", got.stderr, re.M), got.stderr
    assert not re.search(r"^  = *$", got.stderr, re.M), got.stderr  # no empty detail lines
    if location is not None:
        assert f"--> {location}\n" in got.stderr, got.stderr


@pytest.mark.e2e
def test_several_errors_in_one_file_are_reported_together(null_stack, run_mlform):
    spec = _with("    source: data.csv", "    source: data.csv\n    sourze: x") + \
        "  t:\n    type: training_job\n    dataset: ${nope.uri}\n    algorithm: mlp_classifier\n" \
        "    target: y\n    seed: abc\n"
    got = run_mlform(["validate"], null_stack(spec))
    assert got.returncode == 1
    assert "--> mlform.yaml:11:5" in got.stderr  # unknown field 'sourze'
    assert "--> mlform.yaml:22:11" in got.stderr  # seed: abc
    assert got.stderr.count("error: ") == 2


NESTED_TYPOS = """\
version: 1
stack: v
providers: {null: {}}
resources:
  t:
    type: training_job
    dataset: x
    algorithm: mlp_classifier
    target: y
    compute: {gpuz: 1}
  e:
    type: endpoint
    variants:
      a: {model: x, wieght: 5}
    rollout: {stratgy: canary}
"""


@pytest.mark.parametrize(("typo", "fix"), [
    ("gpuz", "gpus"),       # a nested model (compute)
    ("wieght", "weight"),   # a model inside a mapping (variants.a)
    ("stratgy", "strategy"),
], ids=["nested-model", "model-in-a-mapping", "nested-in-endpoint"])
def test_did_you_mean_works_at_any_depth(null_stack, typo, fix):
    with pytest.raises(MlformError) as caught:
        load_stack(null_stack(NESTED_TYPOS))
    by_summary = {d.summary: d.help for d in caught.value.diagnostics}
    assert by_summary[f"unknown field '{typo}'"] == f"did you mean '{fix}'?"


@pytest.mark.e2e
def test_reference_errors_are_reported_together(null_stack, run_mlform):
    spec = _with("    target: y", "    target: y\n    description: ${var.zz}\n    seed: ${x.y}")
    got = run_mlform(["validate"], null_stack(spec))
    assert got.returncode == 1
    assert "--> mlform.yaml:16:18" in got.stderr and "--> mlform.yaml:17:11" in got.stderr


def test_include_merges_resources_with_their_positions(null_stack):
    stack_dir = null_stack(_with("providers:", "include: [more.yaml]\nproviders:"),
                **{"more.yaml": "resources:\n  extra:\n    type: dataset\n    source: b.csv\n"})
    stack = load_stack(stack_dir)
    assert set(stack.resources) == {"data", "train", "extra"}
    assert str(stack.location(("resources", "extra", "source"))).endswith("more.yaml:4:13")
    assert len(stack.files) == 2


def test_spec_digest_changes_with_an_included_file(null_stack):
    stack_dir = null_stack(_with("providers:", "include: [more.yaml]\nproviders:"),
                **{"more.yaml": "resources:\n  extra:\n    type: dataset\n    source: b.csv\n"})
    before = load_stack(stack_dir).digest
    (stack_dir / "more.yaml").write_text(
        "resources:\n  extra:\n    type: dataset\n    source: c.csv\n")
    assert load_stack(stack_dir).digest != before


def test_yaml_null_key_is_the_null_provider(null_stack):
    # A bare `null:` key is YAML's null; a user writing it means the provider named null.
    stack = load_stack(null_stack(BASE))
    assert {n: p.type for n, p in stack.providers.items()} == {"null": "null"}
    assert stack.resources["data"].provider == "null"


def test_dependencies_come_from_references_and_depends_on(null_stack):
    stack_dir = null_stack(BASE + MODEL + "    depends_on: [data]\n")
    stack = load_stack(stack_dir)
    assert stack.resources["train"].dependencies == ["data"]
    assert sorted(stack.resources["m"].dependencies) == ["data", "train"]


def test_missing_stack_file_says_how_to_create_one(tmp_path):
    with pytest.raises(MlformError) as exc:
        load_stack(tmp_path)
    assert "mlform init" in exc.value.diagnostics[0].help


@pytest.mark.e2e
@pytest.mark.parametrize("line", [
    pytest.param("\tdataset: ${data.uri}", id="tab-on-a-line-with-a-reference"),
    pytest.param("\tdataset: x", id="tab-on-a-plain-line"),
])
def test_tab_indentation_gets_the_tab_help_at_the_tab(null_stack, run_mlform, line):
    """The '${...} in flow style' help was given whenever the line held a reference."""
    got = run_mlform(["validate"], null_stack(_with("    dataset: ${data.uri}", line)))
    assert got.returncode == 1
    assert "--> mlform.yaml:13:1\n" in got.stderr
    assert got.stderr.endswith("\nhelp: YAML does not allow tabs for indentation: use spaces\n")
