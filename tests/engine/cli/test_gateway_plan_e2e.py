"""A gateway's routes at plan time, through the installed command: each route is known
as the endpoint it names (provider, configuration, rollout), a route that names no
endpoint, a backend provider holding a secret and a gateway on a provider that cannot
run one are refused at their place in the spec, with the fix."""

from __future__ import annotations

import json

import pytest

STACK = """\
version: 1
stack: gw
providers:
  local: {}
  cloud: {type: "null"%(cloud)s}
variables:
  token: {type: string, sensitive: true, default: hunter2}
resources:
  fraud_endpoint:
    type: endpoint
    provider: cloud
    variants:
      champion: {model: "null://models/m/1"}
    rollout: {strategy: canary, steps: [20, 100]}
  front:
    type: gateway
    provider: %(gateway_provider)s
    routes:
      - endpoint: "%(route)s"
        weight: 100
"""


def stack(null_stack, cloud: str = "", gateway_provider: str = "local",
          route: str = "${fraud_endpoint.url}"):
    return null_stack(STACK % {"cloud": cloud, "gateway_provider": gateway_provider,
                               "route": route})


def test_a_route_is_known_as_the_endpoint_it_names(null_stack, run_mlform):
    directory = stack(null_stack, cloud=", region: eu-west-1")
    proc = run_mlform(["plan", "--format", "json", "--no-color"], directory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    front = next(c for c in json.loads(proc.stdout)["changes"] if c["name"] == "front")
    assert front["dependencies"] == ["fraud_endpoint"]
    backend = front["after"]["routes"][0]["backend"]
    assert {k: backend[k] for k in ("resource", "provider", "provider_type", "config")} == \
        {"resource": "fraud_endpoint", "provider": "cloud", "provider_type": "null",
         "config": {"region": "eu-west-1"}}
    assert backend["outputs"]["url"] == {"$unknown": "fraud_endpoint.url"}
    assert backend["rollout"]["steps"] == [20, 100]
    assert backend["rollback"]["min_requests"] == 20


@pytest.mark.parametrize(("kwargs", "summary", "where", "help_text"), [
    pytest.param({"route": "http://example.com"},
                 "error: a gateway route must name an endpoint by a reference to its url",
                 "mlform.yaml:", 'help: write endpoint: "${fraud_endpoint.url}"',
                 id="a-plain-url"),
    pytest.param({"cloud": ", api_token: abc"},
                 "error: the gateway would hold provider 'cloud''s sensitive setting "
                 "'api_token'", "mlform.yaml:", "help: give provider 'cloud' its credentials "
                 "from the environment", id="a-secret-in-the-backend-provider"),
    pytest.param({"cloud": ', store: "${var.token}"'},
                 "error: the gateway would hold provider 'cloud''s sensitive setting 'store'",
                 "mlform.yaml:", "help: give provider 'cloud'", id="a-sensitive-variable"),
    pytest.param({"gateway_provider": "cloud"},
                 "error: provider 'cloud' (null) cannot realise a gateway ('front')",
                 "mlform.yaml:", "help: run the gateway on a 'local' provider: it fronts "
                 "endpoints on any provider", id="a-provider-without-gateways"),
])
def test_refused_at_plan(null_stack, run_mlform, kwargs, summary, where, help_text):
    directory = stack(null_stack, **kwargs)
    proc = run_mlform(["plan", "--no-color"], directory)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert summary in proc.stderr
    assert where in proc.stderr and help_text in proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr
