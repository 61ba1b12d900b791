"""The shipped library of default policies: off unless a `policies: {enable: [...]}`
(in the stack or a policy file) names them. Their parameters' defaults are in PARAMS."""

from __future__ import annotations

PARAMS = {"max_gpus_per_job": 4, "destroy_approval_label": "approved-destroy"}

SOURCE = "mlform:default-policies.yaml"
"""The name these rules' locations carry (they are not a file of the user's)."""

TEXT = """\
rules:
  - name: endpoint-rollback-conditions
    description: Every endpoint rolls back on a measurable condition.
    resource_types: [endpoint]
    condition: |
      has(resource.rollback.max_error_rate) || has(resource.rollback.max_p99_latency_ms)
    message: "the endpoint has no rollback condition; set rollback.max_error_rate or rollback.max_p99_latency_ms"
  - name: model-has-gate
    description: Every model is judged by at least one gate before it is registered.
    resource_types: [model]
    condition: size(resource.gates) > 0
    message: "the model has no gate; add one under gates (e.g. {metric: auc, min: 0.8})"
  - name: credit-model-fairness-gate
    description: >-
      A model used for credit decisions (tag `decisions: credit`, or an intended_use that
      mentions credit) has a fairness gate.
    resource_types: [model]
    condition: |
      !((has(resource.tags.decisions) && resource.tags.decisions.matches("(?i)credit"))
        || (has(resource.intended_use) && resource.intended_use.matches("(?i)credit")))
      || resource.gates.exists(g, has(g.fairness))
    message: "the model serves credit decisions but has no fairness gate; add one (e.g. {fairness: demographic_parity_difference, sensitive_column: gender, max: 0.1})"
  - name: max-gpus-per-job
    description: No job asks for more than params.max_gpus_per_job GPUs in all.
    resource_types: [training_job, endpoint]
    condition: |
      !has(resource.compute.gpus) || !has(resource.compute.instances)
      || resource.compute.gpus * resource.compute.instances <= params.max_gpus_per_job
    message: "the job asks for more GPUs (compute.gpus x compute.instances) than params.max_gpus_per_job allows"
  - name: destroy-needs-approval
    description: Nothing is destroyed without the approval label on the plan.
    condition: change.action != "delete" || params.destroy_approval_label in labels
    message: "the plan destroys it without the approval label (plan --label LABEL, or MLFORM_LABELS; the label is params.destroy_approval_label)"
  - name: endpoint-prevent-destroy
    description: Every endpoint is protected by lifecycle.prevent_destroy.
    resource_types: [endpoint]
    condition: resource.lifecycle.prevent_destroy
    message: "the endpoint can be destroyed; set lifecycle.prevent_destroy to true"
"""
