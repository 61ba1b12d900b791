"""What providers declare they support, checked by `validate` and `plan` before any apply,
and the outputs they return, checked when apply records them."""

from __future__ import annotations

import json

import pytest
from mlform.engine.capabilities import TypeSupport, Unsupported, field_findings, produced
from mlform.engine.plan.model import Plan
from mlform.engine.plan.planfile import from_document, to_document
from mlform.engine.provider import Provider
from mlform.engine.spec.loader import load_stack
from mlform.engine.spec.outputs import OUTPUT_MODELS

HEAD = """\
version: 1
stack: caps
providers:
  null: {}
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

CASES = [
    # (id, reason, extra spec text, line with the fault, token marked, summary, help)
    ("output-the-provider-lacks-in-an-input",
     "the null provider records no row count, so the reference could never resolve",
     "    hyperparameters:\n      epochs: ${data.rows}\n",
     "epochs: ${data.rows}", "${data.rows}",
     "provider 'null' does not produce 'rows' for dataset 'data' in '${data.rows}'",
     "help: outputs of a dataset on provider 'null': id, uri, version"),
    ("output-the-provider-lacks-in-a-stack-output",
     "stack outputs are references too; a nested path is judged by its first attribute",
     "outputs:\n  auc: {value: \"${train.metrics.auc}\"}\n",
     "auc: {value:", "${train.metrics.auc}",
     "provider 'null' does not produce 'metrics' for training_job 'train' in "
     "'${train.metrics.auc}'",
     "help: outputs of a training_job on provider 'null': id, artifact"),
    ("port-on-a-provider-other-than-local",
     "endpoint.port is the local provider's setting: elsewhere it was silently ignored",
     "  web:\n    type: endpoint\n    port: 8080\n    variants:\n"
     "      champion: {model: \"${data.uri}\"}\n",
     "port: 8080", "port",
     "'port' is a setting of the local provider; provider 'null' has no use for it",
     "help: remove it: only a local provider reads it"),
]


def _marked(text: str, directory, line_has: str, token: str) -> None:
    lines = (directory / "mlform.yaml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line_has in line)
    column = lines[number - 1].index(token) + 1
    assert f"mlform.yaml:{number}:{column}" in text, text
    gutter = " " * (len(str(number)) + 1) + "| "
    assert f"\n{gutter}{' ' * (column - 1)}{'^' * len(token)}\n" in text, text


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize(("reason", "extra", "line_has", "token", "summary", "help_text"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_the_provider_does_not_support_is_refused_before_apply(
        null_stack, run_mlform, command, reason, extra, line_has, token, summary, help_text):
    directory = null_stack(HEAD + extra, **{"data.csv": "a,y\n1,0\n"})
    got = run_mlform([command, "--no-color"], directory)
    assert got.returncode == 1, reason
    text = got.stdout + got.stderr
    assert f"error: {summary}" in text, text
    assert help_text in text, text
    _marked(text, directory, line_has, token)
    assert "Traceback" not in text
    assert not (directory / ".mlform" / "null").exists()  # nothing was made


def test_references_to_what_the_provider_produces_plan_and_apply(null_stack, run_mlform):
    directory = null_stack(HEAD + "  m:\n    type: model\n    artifact: ${train.artifact}\n"
                                  "outputs:\n  uri: {value: \"${m.uri}\"}\n",
                           **{"data.csv": "a,y\n1,0\n"})
    got = run_mlform(["apply", "--auto-approve", "--no-color"], directory)
    assert got.returncode == 0, got.stdout + got.stderr
    assert run_mlform(["plan", "--detailed-exitcode"], directory).returncode == 0


def test_port_stays_accepted_on_the_local_provider(null_stack, run_mlform):
    directory = null_stack("""\
        version: 1
        stack: caps
        providers: {local: {}}
        resources:
          web:
            type: endpoint
            port: 8080
            variants:
              champion: {model: "local://models/m/1"}
        """)
    got = run_mlform(["validate", "--no-color"], directory)
    assert got.returncode == 0, got.stdout + got.stderr


BAD_OUTPUTS = """\
version: 1
stack: caps
providers:
  null: {}
resources:
  m:
    type: model
    artifact: null://artifact
    provider_options: {null: {bad_output: true}}
"""


def test_a_provider_returning_bad_outputs_is_an_apply_error_naming_it(null_stack, run_mlform):
    directory = null_stack(BAD_OUTPUTS)
    got = run_mlform(["apply", "--auto-approve", "--no-color"], directory)
    text = got.stdout + got.stderr
    assert got.returncode == 1, text
    assert "provider 'null' returned outputs for model 'm' that do not fit the model " \
           "output model" in text, text
    assert "output 'uri' is missing" in text, text
    assert "output 'name': input should be a valid string (got int)" in text, text
    assert "Traceback" not in text
    state = json.loads((directory / ".mlform" / "state.json").read_text())
    recorded = state["resources"]["m"]
    # made remotely, so kept (nothing is lost), but tainted: the next apply replaces it
    assert recorded["status"] == "tainted" and recorded["id"]
    plan = run_mlform(["plan", "--no-color"], directory)
    assert "tainted" in plan.stdout, plan.stdout + plan.stderr


class Declares(Provider):
    """A provider whose declarations are the test's."""

    resource_types = frozenset(OUTPUT_MODELS)
    capabilities = {
        "model": TypeSupport(outputs=frozenset({"uri"}), unsupported=(
            Unsupported(("retirement",), "the registry keeps every version", noop=True),
            Unsupported(("owner",), "set it in the registry"))),
    }

    def observe(self, req): raise NotImplementedError
    def create(self, req, progress): raise NotImplementedError
    def update(self, req, progress): raise NotImplementedError
    def delete(self, req, progress): raise NotImplementedError


def test_a_provider_that_declares_nothing_for_a_type_keeps_every_output_referable():
    provider = Declares.__new__(Declares)
    assert produced(provider, "endpoint") == frozenset(OUTPUT_MODELS["endpoint"].model_fields)
    assert produced(provider, "model") == frozenset({"uri"})


@pytest.mark.parametrize(("extra", "errors", "notes"), [
    ("", [], []),
    ("    retirement: {keep_last: 3}\n", [],
     ["model.m: 'retirement' has no effect on provider 'null' (the registry keeps every "
      "version)"]),
    ("    owner: team-a\n", ["provider 'null' does not support 'owner' on a model"], []),
], ids=["nothing-unsupported-written", "noop-field-is-a-note", "unsupported-field-is-an-error"])
def test_field_findings_follow_the_declaration(null_stack, extra, errors, notes):
    stack = load_stack(null_stack("version: 1\nstack: caps\nproviders: {null: {}}\n"
                                  "resources:\n  m:\n    type: model\n"
                                  "    artifact: null://a\n" + extra))
    provider = Declares.__new__(Declares)
    found, said = field_findings(stack, "m", provider, "null")
    assert [d.summary for d in found] == errors
    assert said == notes


def test_plan_notes_survive_the_plan_file():
    plan = Plan(stack="s", lineage="l", serial=1, spec_digest="d", changes=(),
                notes=("endpoint.web: 'limits' has no effect on provider 'aws' (why)",))
    assert from_document(to_document(plan, "salt")).notes == plan.notes


def test_a_stack_applied_by_the_previous_version_still_plans_empty(null_stack, run_mlform):
    # The previous null provider returned the same six keys for every type (a model's
    # `version` a digest string): what a provider does not declare is its own data,
    # never judged, so such a record refreshes and plans as before.
    directory = null_stack(HEAD + "  m:\n    type: model\n    artifact: ${train.artifact}\n",
                           **{"data.csv": "a,y\n1,0\n"})
    assert run_mlform(["apply", "--auto-approve"], directory).returncode == 0
    state_path = directory / ".mlform" / "state.json"
    state = json.loads(state_path.read_text())
    for res in state["resources"].values():
        rid = res["id"]
        digest = next(iter(res["outputs"].values())).rsplit("/", 1)[-1]
        old = {"uri": f"null://{rid}/{digest}", "version": digest,
               "artifact": f"null://{rid}/artifact/{digest}",
               "url": f"http://null.invalid/{rid}", "name": rid,
               "output_uri": f"null://{rid}/out/{digest}"}
        res["outputs"] = old
        record = directory / ".mlform" / "null" / f"{res['id']}.json"
        stored = json.loads(record.read_text())
        record.write_text(json.dumps({**stored, "outputs": old}))
    state_path.write_text(json.dumps(state))
    got = run_mlform(["plan", "--detailed-exitcode", "--no-color"], directory)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "No changes." in got.stdout


def test_outputs_read_back_wrongly_typed_leave_the_record_as_it_was(null_stack, run_mlform):
    # What a provider reads back is judged as what it returns from create: a record is
    # not overwritten with values that do not fit the type's model.
    directory = null_stack(HEAD, **{"data.csv": "a,y\n1,0\n"})
    assert run_mlform(["apply", "--auto-approve"], directory).returncode == 0
    state_path = directory / ".mlform" / "state.json"
    before = json.loads(state_path.read_text())["resources"]["data"]["outputs"]
    rid = json.loads(state_path.read_text())["resources"]["data"]["id"]
    record = directory / ".mlform" / "null" / f"{rid}.json"
    stored = json.loads(record.read_text())
    record.write_text(json.dumps({**stored, "outputs": {**stored["outputs"], "uri": 12}}))
    got = run_mlform(["refresh", "--no-color"], directory)
    text = got.stdout + got.stderr
    # reported as refresh reports a resource it cannot read: the others still refresh
    assert "warning: data: provider 'null' returned outputs for dataset 'data' that do not fit the " \
           "dataset output model: output 'uri': input should be a valid string (got int)" \
           in text, text
    assert json.loads(state_path.read_text())["resources"]["data"]["outputs"] == before
