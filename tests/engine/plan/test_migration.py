"""The plan's migration section: computed from a planned move and a gateway cutover,
kept in the plan document, and printed in order by the text, markdown and CI views."""

from mlform.engine.plan.model import Action, AttributeDiff, Plan, ResourceChange
from mlform.engine.plan.planfile import from_document, to_document
from mlform.engine.values import Unknown
from mlform.engine.views import plan_markdown, plan_text, pr_comment

ROLLOUT = {"strategy": "canary", "steps": [50], "step_percent": 25, "wait": "300ms"}
ROLLBACK = {"max_error_rate": 0.05, "max_p99_latency_ms": None, "min_requests": 3,
            "evidence_timeout": "2m", "on_inconclusive": "rollback"}


def _route(resource, provider, url):
    return {"endpoint": url, "weight": 100, "backend": {
        "resource": resource, "provider": provider, "provider_type": provider, "config": {},
        "outputs": {"url": url}, "rollout": ROLLOUT, "rollback": ROLLBACK}}


def _plan() -> Plan:
    gateway = {"parity": {"min_label_agreement": 0.99, "max_score_difference": None,
                          "sample": 100, "holdout": "/state/train/artifact"}, "soak": "2s"}
    return Plan(stack="s", lineage="l", serial=3, spec_digest="d", changes=(
        ResourceChange("train", "training_job", "aws", Action.MOVE, {}, {}, moved_from="local",
                       copies=(("model.pt", 2048), ("holdout.csv", 1024))),
        ResourceChange("green", "endpoint", "aws", Action.CREATE, None, {}),
        ResourceChange("front", "gateway", "local", Action.UPDATE,
                       {**gateway, "routes": [_route("blue", "local", "http://127.0.0.1:1")]},
                       {**gateway, "routes": [_route("green", "aws", Unknown())]},
                       attributes=(AttributeDiff("routes[0]", "blue", "green"),)),
        ResourceChange("blue", "endpoint", "local", Action.DELETE, {}, None),
        ResourceChange("data", "dataset", "local", Action.NOOP, {}, {}),
    ))


def test_section_lists_copy_create_parity_cutover_and_destroy_times():
    doc = to_document(_plan(), salt="x")
    m = doc["migration"]
    assert m["copied"] == [{"resource": "training_job.train", "from": "local", "to": "aws",
                            "files": 2, "size": 3072}]
    assert m["created"] == [{"resource": "endpoint.green", "provider": "aws",
                             "action": "create"}]
    [cut] = m["cutovers"]
    assert (cut["gateway"], cut["from"], cut["to"], cut["to_provider"]) == \
        ("gateway.front", ["endpoint.blue"], "endpoint.green", "aws")
    assert cut["parity"] == {"min_label_agreement": 0.99, "max_score_difference": None,
                             "sample": 100, "holdout": "/state/train/artifact"}
    assert (cut["steps"], cut["wait"], cut["soak"]) == ([50, 100], "300ms", "2s")
    assert cut["rollback"]["min_requests"] == 3
    when = {d["resource"]: d["when"] for d in m["destroyed"]}
    assert "after gateway.front's last cutover step and its soak (2s)" in when["endpoint.blue"]
    assert "successor on 'aws' is copied, verified and recorded" in when["training_job.train"]
    assert m["prevent_destroy"] == "holds"
    # A saved plan keeps it: the json format is the document.
    assert from_document(doc).changes[0].copies == (("model.pt", 2048), ("holdout.csv", 1024))


def test_text_markdown_and_ci_comment_print_the_section_in_order():
    doc = to_document(_plan(), salt="x")
    text = plan_text.render(doc, color=False)
    order = ["Migration:", "1. Copied:", "training_job.train: 'local' -> 'aws', 2 files, 3.0 KiB",
             "2. Created:", "endpoint.green on 'aws'", "3. Parity:",
             "min_label_agreement 0.99 on up to 100 rows: the held-out rows of "
             "/state/train/artifact", "4. Cutover:", "traffic steps [50, 100]% on the new "
             "endpoint, 300ms each", "max_error_rate 0.05, min_requests 3",
             "soak 2s at 100%", "5. Destroyed:", "endpoint.blue on 'local': after gateway.front",
             "6. prevent_destroy:", "Plan:"]
    at = [text.index(part) for part in order]
    assert at == sorted(at), text
    markdown = plan_markdown.render(doc)
    assert "**Migration**" in markdown and "1. **Copied**" in markdown
    assert "endpoint.blue on 'local': after gateway.front" in markdown
    assert "**Migration**" in pr_comment.render_comment(doc)


def test_a_plan_without_moves_or_cutover_has_no_section():
    plan = Plan(stack="s", lineage="l", serial=1, spec_digest="d", changes=(
        ResourceChange("green", "endpoint", "local", Action.CREATE, None, {}),))
    doc = to_document(plan, salt="x")
    assert "migration" not in doc
    assert "Migration" not in plan_text.render(doc, color=False)


def test_a_moved_endpoint_behind_a_gateway_is_created_there_and_its_old_side_goes_after_the_cutover():
    gateway = {"parity": {"sample": 40, "holdout": Unknown()}, "soak": "0s"}
    plan = Plan(stack="s", lineage="l", serial=3, spec_digest="d", changes=(
        ResourceChange("ep", "endpoint", "aws", Action.MOVE, {}, {}, moved_from="local"),
        ResourceChange("front", "gateway", "local", Action.UPDATE,
                       {**gateway, "routes": [_route("ep", "local", "http://127.0.0.1:1")]},
                       {**gateway, "routes": [_route("ep", "aws", Unknown())]}),
    ))
    doc = to_document(plan, salt="x")
    assert "the held-out rows of parity.holdout, known after apply" in \
        plan_text.render(doc, color=False)
    m = doc["migration"]
    assert m["created"] == [{"resource": "endpoint.ep", "provider": "aws", "action": "move"}]
    assert m["cutovers"][0]["from"] == ["endpoint.ep"]
    assert m["destroyed"] == [{"resource": "endpoint.ep", "provider": "local",
                               "when": "its old copy on 'local', after gateway.front's last "
                                       "cutover step and its soak (0s), once no traffic "
                                       "reaches it"}]


def test_an_endpoint_replaced_on_another_provider_is_destroyed_on_the_one_it_leaves():
    gateway = {"parity": {}, "soak": "1s"}
    plan = Plan(stack="s", lineage="l", serial=3, spec_digest="d", changes=(
        ResourceChange("ep", "endpoint", "aws", Action.CREATE_DELETE, {}, {}),
        ResourceChange("front", "gateway", "local", Action.UPDATE,
                       {**gateway, "routes": [_route("ep", "local", "http://127.0.0.1:1")]},
                       {**gateway, "routes": [_route("ep", "aws", Unknown())]}),
    ))
    m = to_document(plan, salt="x")["migration"]
    assert m["created"] == [{"resource": "endpoint.ep", "provider": "aws",
                             "action": "create-then-delete"}]
    assert m["destroyed"] == [{"resource": "endpoint.ep", "provider": "local",
                               "when": "after gateway.front's last cutover step and its soak "
                                       "(1s), once no traffic reaches it"}]
