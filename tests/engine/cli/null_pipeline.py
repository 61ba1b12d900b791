"""The two-resource stack (a dataset feeding a training job, on the null provider) that
the command tests share; each names its own stack."""


def pipeline_spec(stack: str) -> str:
    return f"""\
version: 1
stack: {stack}
providers:
  null: {{}}
resources:
  data:
    type: dataset
    source: data.csv
  train:
    type: training_job
    dataset: ${{data.uri}}
    algorithm: mlp_classifier
    target: y
"""
