"""The engine hides secrets in whatever a provider says, even a provider that forgot to."""

from __future__ import annotations

from mlform.engine.apply.applier import Applier
from mlform.engine.plan.planner import make_plan
from mlform.engine.provider import ApplyResponse, Provider
from mlform.engine.session import Options, Session

SPEC = """\
version: 1
stack: leaky
providers:
  null: {}
variables:
  token: {type: string, sensitive: true}
resources:
  data:
    type: dataset
    source: "s3://bucket/${var.token}/data.csv"
"""


class Careless(Provider):
    """Echoes its revealed inputs in progress and in its error, as a buggy provider would."""

    resource_types = frozenset({"dataset"})

    def observe(self, req):
        raise NotImplementedError

    def create(self, req, progress):
        from mlform.engine.values import reveal

        progress(f"reading {reveal(req.inputs)['source']}")
        return ApplyResponse(error=f"not found: {reveal(req.inputs)['source']}")

    update = delete = observe


def test_provider_errors_and_progress_never_carry_a_secret(null_stack):
    stack = null_stack(SPEC)
    said: list[str] = []

    class Hooks:
        def progress(self, name, message, fraction):
            said.append(message)

        def __getattr__(self, name):
            return lambda *a, **k: None

    session = Session(Options(stack_dir=stack, vars=["token=hunter2-XYZ"]), "apply")
    try:
        state = session.read_state()
        plan = make_plan(session.stack, state, session.variables, session.providers)
        careless = Careless(session.providers.get("null").ctx)
        session.providers._made["null"] = careless
        result = Applier(session.stack, state, session.variables, session.providers,
                         session.backend, Hooks()).apply(plan)
    finally:
        session.close()
    # text built around a secret is a secret as a whole
    assert result.failed == {"data": "not found: (sensitive)"}
    assert said == ["reading (sensitive)"]
