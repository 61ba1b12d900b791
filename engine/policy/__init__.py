"""Policy checks at plan: rules written in CEL (the Common Expression Language that
Kubernetes admission policies use), evaluated by `cel-python` on a plain-data document
of the plan, with shipped defaults that are off unless enabled by name."""
