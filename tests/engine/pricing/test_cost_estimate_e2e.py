"""Cost in the plan: the aws example's plan shows the figures computed here by hand from
the shipped price table; an organisation's table overrides it; `local` shows none; and
the estimate's arithmetic for updates, deletes and GPUs on each cloud provider."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import mlform.engine.pricing as pricing
import pytest

AWS_STACK = Path(__file__).parents[2] / "providers" / "aws" / "aws_stack.py"
TABLES = Path(pricing.__file__).parent


def aws_stack_module():
    spec = importlib.util.spec_from_file_location("aws_stack_for_cost", AWS_STACK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(provider: str) -> dict:
    return json.loads((TABLES / f"{provider}.json").read_text())


@pytest.fixture
def aws_example(tmp_path) -> Path:
    """The aws tests' example stack (data to model) with a 3 h, two-machine training job
    and an endpoint of two instances serving a champion and a shadow variant."""
    example = aws_stack_module()
    spec = example.TRAINED_MODEL_STACK.format(
        region="us-east-1", role="arn:aws:iam::123456789012:role/mlform-sagemaker",
        bucket="mlform-test-bucket", url="http://127.0.0.1:9")
    spec = spec.replace("    target: is_fraud\n",
                        "    target: is_fraud\n    timeout: 3h\n    compute: {instances: 2}\n")
    spec += """\
  fraud_endpoint:
    type: endpoint
    compute: {instances: 2}
    variants:
      champion: {model: "${fraud_model.uri}", weight: 100}
      challenger: {model: "${fraud_model.uri}", weight: 0, shadow: true}
"""
    (tmp_path / "mlform.yaml").write_text(spec)
    example.write_data(tmp_path)
    return tmp_path


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.mark.e2e
def test_the_aws_example_plan_shows_the_cost_computed_by_hand(aws_example, run_mlform):
    prices = table("aws")
    data_bytes = (aws_example / "data" / "transactions.csv").stat().st_size
    training = prices["training"]["ml.m5.xlarge"] * 2 * 3            # 2 machines, 3 h
    serving = prices["serving"]["ml.m5.large"] * 2 * 2 * 730         # 2 x 2 variants, always
    storage = data_bytes / 1e9 * prices["storage_gb_month"]

    text = run_mlform(["plan", "--no-color"], aws_example, env=AWS_ENV)
    assert text.returncode == 0, text.stderr
    assert f"+ endpoint.fraud_endpoint: ${prices['serving']['ml.m5.large'] * 4:g}/h, " \
           f"+${serving:,.2f}/month" in text.stdout
    assert "serving variant challenger (shadow): ml.m5.large x 2 at $0.115/h (always on)" \
        in text.stdout
    assert f"+ training_job.train: ${training / 3:g}/h, ${training:,.2f} one-off" in text.stdout
    assert "training: ml.m5.xlarge x 2 at $0.23/h for 3 h (at most 3h (its timeout))" \
        in text.stdout
    assert f"Total: +${serving + storage:,.2f}/month, ${training:,.2f} one-off " \
           "(training runs)" in text.stdout
    assert f"as of {prices['as_of']}; source {prices['source']}" in text.stdout

    doc = json.loads(run_mlform(["plan", "--format", "json"], aws_example,
                                env=AWS_ENV).stdout)["cost"]
    assert doc["total_monthly_delta"] == round(serving + storage, 4)
    assert doc["total_one_off"] == round(training, 4)
    assert [r["name"] for r in doc["resources"]] == ["transactions", "train", "fraud_endpoint"]
    assert doc["tables"][0]["as_of"] == prices["as_of"]

    markdown = run_mlform(["plan", "--format", "markdown"], aws_example, env=AWS_ENV).stdout
    assert f"**Estimated cost: +${serving + storage:,.2f}/month, ${training:,.2f} one-off " \
           "(training runs)**" in markdown
    assert f"| `fraud_endpoint` | create | $0.46 | +${serving:,.2f} | $0.00 |" in markdown


@pytest.mark.e2e
def test_an_organisations_price_table_overrides_the_shipped_one(aws_example, run_mlform,
                                                               tmp_path_factory):
    own = tmp_path_factory.mktemp("prices") / "negotiated.json"
    own.write_text(json.dumps({"provider": "aws", "as_of": "2026-11-01",
                               "source": "https://prices.example.com/enterprise",
                               "serving": {"ml.m5.large": 0.05}}))
    got = run_mlform(["plan", "--no-color"], aws_example,
                     env={**AWS_ENV, "MLFORM_PRICING": str(own)})
    assert got.returncode == 0, got.stderr
    assert f"+${0.05 * 4 * 730:,.2f}/month" in got.stdout
    assert f"as of 2026-11-01; source https://prices.example.com/enterprise [{own}]" \
        in got.stdout
    # what the override does not price still comes from the shipped table
    assert f"${table('aws')['training']['ml.m5.xlarge'] * 6:,.2f} one-off" in got.stdout

    own.write_text('{"provider": "aws", "serving": {"ml.m5.large": "cheap"}}')
    bad = run_mlform(["plan", "--no-color"], aws_example,
                     env={**AWS_ENV, "MLFORM_PRICING": str(own)})
    assert bad.returncode == 1
    assert f"error: price table {own}: 'serving' must map type names to hourly prices " \
           "(numbers)" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.e2e
def test_a_local_stack_shows_no_cost(tmp_path, run_mlform):
    (tmp_path / "mlform.yaml").write_text(
        "version: 1\nstack: local-cost\nresources:\n"
        "  data: {type: dataset, source: data.csv}\n")
    (tmp_path / "data.csv").write_text("x,y\n1,0\n")
    text = run_mlform(["plan", "--no-color"], tmp_path)
    assert text.returncode == 0, text.stderr
    assert "cost" not in text.stdout.lower()
    assert "cost" not in json.loads(run_mlform(["plan", "--format", "json"], tmp_path).stdout)


# --- the estimate's arithmetic, in process ---------------------------------------------

class Providers:
    def __init__(self, **providers):
        self.providers = providers

    def get(self, name):
        return self.providers[name]


def provider(tmp_path: Path, ptype: str, config: dict):
    from mlform.engine.provider import ProviderContext
    from mlform.engine.registry import provider_class

    ctx = ProviderContext(stack="s", stack_dir=tmp_path, provider_name=ptype,
                          config={"type": ptype, **config}, data_dir=tmp_path / ptype)
    return provider_class(ptype)(ctx)


CONFIGS = {
    "aws": {"region": "us-east-1", "role_arn": "arn:aws:iam::123456789012:role/r",
            "bucket": "bucket-a"},
    "gcp": {"project": "proj-a", "region": "us-central1", "bucket": "bucket-a"},
    "azure": {"subscription_id": "00000000-0000-0000-0000-000000000000",
              "resource_group": "rg", "workspace": "ws", "storage_account": "acct",
              "container": "state"},
}


def change(name, rtype, ptype, action, before, after):
    from mlform.engine.plan.model import Action, ResourceChange

    return ResourceChange(name=name, type=rtype, provider=ptype, action=Action(action),
                          before=before, after=after)


def plan_of(*changes):
    from mlform.engine.plan.model import Plan

    return Plan(stack="s", lineage="l", serial=1, spec_digest="d", changes=tuple(changes))


# (id, provider, change, expected monthly delta, expected one-off), by hand from the tables
ARITHMETIC = [
    ("aws-endpoint-scaled-up", "aws",
     ("api", "endpoint", "update", {"variants": {"a": {"model": "m"}}},
      {"variants": {"a": {"model": "m"}}, "compute": {"instances": 3}}),
     lambda t: t["serving"]["ml.m5.large"] * 2 * 730, 0.0),
    ("aws-endpoint-deleted", "aws",
     ("api", "endpoint", "delete", {"variants": {"a": {"model": "m"}}}, None),
     lambda t: -t["serving"]["ml.m5.large"] * 730, 0.0),
    ("gcp-gpu-training", "gcp",
     ("train", "training_job", "create", None,
      {"dataset": "gs://b/d.csv", "algorithm": "mlp_classifier", "target": "y",
       "compute": {"gpus": 2, "instances": 3}}),
     lambda t: 0.0,  # one replica (gcp trains on one), n1-standard-16 + 2 T4 for 1 h
     lambda t: t["training"]["n1-standard-16"] + 2 * t["training"]["NVIDIA_TESLA_T4"]),
    ("azure-endpoint", "azure",
     ("api", "endpoint", "create", None,
      {"variants": {"a": {"model": "m"}}, "compute": {"instances": 2}}),
     lambda t: t["serving"]["Standard_DS2_v2"] * 2 * 730, 0.0),
    ("unknown-count-is-not-estimated", "aws",
     ("api", "endpoint", "create", None,
      {"variants": {"a": {"model": "m"}}, "compute": {"instances": None}}),
     lambda t: 0.0, 0.0),
]


@pytest.mark.parametrize("case", ARITHMETIC, ids=[c[0] for c in ARITHMETIC])
def test_the_estimate_of_one_change(case, tmp_path):
    from mlform.engine.pricing.estimate import estimate
    from mlform.engine.values import Unknown

    _, ptype, (name, rtype, action, before, after), monthly, one_off = case
    if after and after.get("compute", {}).get("instances", 1) is None:
        after = {**after, "compute": {"instances": Unknown("n.instances")}}
    got = estimate(plan_of(change(name, rtype, ptype, action, before, after)),
                   {ptype: ptype}, Providers(**{ptype: provider(tmp_path, ptype,
                                                                 CONFIGS[ptype])}))
    prices = table(ptype)
    assert got["total_monthly_delta"] == pytest.approx(monthly(prices), abs=1e-4)
    expected_one_off = one_off(prices) if callable(one_off) else one_off
    assert got["total_one_off"] == pytest.approx(expected_one_off, abs=1e-4)
    if case[0] == "unknown-count-is-not-estimated":
        assert got["unpriced"] == ["api: compute.instances is known only after apply"]


def test_a_move_is_priced_against_where_the_resource_was(tmp_path):
    """aws -> gcp: the delta is gcp's month less aws's; local -> aws: all of aws's."""
    from mlform.engine.plan.model import Action, ResourceChange
    from mlform.engine.pricing.estimate import estimate

    inputs = {"variants": {"a": {"model": "m"}}}
    providers = Providers(aws=provider(tmp_path, "aws", CONFIGS["aws"]),
                          gcp=provider(tmp_path, "gcp", CONFIGS["gcp"]),
                          local=provider(tmp_path, "local", {}))
    types = {"aws": "aws", "gcp": "gcp", "local": "local"}

    def moved(source: str, target: str) -> float:
        move = ResourceChange(name="api", type="endpoint", provider=target, action=Action.MOVE,
                              before=inputs, after=inputs, moved_from=source)
        return estimate(plan_of(move), types, providers)["total_monthly_delta"]

    gcp, aws = table("gcp")["serving"]["n1-standard-2"], table("aws")["serving"]["ml.m5.large"]
    assert moved("aws", "gcp") == pytest.approx((gcp - aws) * 730, abs=1e-4)
    assert moved("local", "aws") == pytest.approx(aws * 730, abs=1e-4)


def test_a_moved_training_job_costs_no_training_run(tmp_path):
    """A move carries a finished run over: no training is priced, on either side."""
    from mlform.engine.plan.model import Action, ResourceChange
    from mlform.engine.pricing.estimate import estimate

    inputs = {"dataset": "s3://b/d.csv", "algorithm": "mlp_classifier", "target": "y"}
    providers = Providers(aws=provider(tmp_path, "aws", CONFIGS["aws"]),
                          local=provider(tmp_path, "local", {}))
    types = {"aws": "aws", "local": "local"}
    rerun = ResourceChange(name="train", type="training_job", provider="aws",
                           action=Action.CREATE, before=None, after=inputs)
    assert estimate(plan_of(rerun), types, providers)["total_one_off"] > 0
    move = ResourceChange(name="train", type="training_job", provider="aws",
                          action=Action.MOVE, before=inputs, after=inputs, moved_from="local")
    got = estimate(plan_of(move), types, providers)
    assert got is None or got["total_one_off"] == 0
