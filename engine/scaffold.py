"""What `mlform init` writes: a working stack and its sample data."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

SCHEMA_FILE = ".mlform/mlform.schema.json"
"""Where `init` writes the JSON Schema of this mlform version, for editors."""
SCHEMA_COMMENT = f"# yaml-language-server: $schema={SCHEMA_FILE}\n"

STACK_TEMPLATE = SCHEMA_COMMENT + """\
# A fraud-detection stack on the local provider: data -> training -> registry with
# an evaluation gate -> an HTTP endpoint with canary rollouts -> drift monitoring.
version: 1
stack: {name}
backend: {{type: local}}
providers:
  local: {{}}
variables:
  min_auc:
    type: number
    default: 0.8
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
    quality:
      min_rows: 100
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: 5, lr: 0.01}}
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: ${{var.min_auc}}
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${{fraud_model.uri}}
        weight: 100
    rollout: {{strategy: canary, steps: [10, 50, 100], wait: 1s}}
  drift_monitor:
    type: monitor
    endpoint: ${{fraud_endpoint.id}}
    reference: ${{transactions.uri}}
    schedule: 1m
outputs:
  url:
    value: ${{fraud_endpoint.url}}
"""

FEATURES = ["amount", "hour", "merchant_risk", "account_age_days", "txn_last_24h"]


def write_sample_data(path: Path, rows: int = 2000, seed: int = 7, shift: float = 0.0) -> Path:
    """Synthetic card transactions with a learnable fraud signal; `shift` moves the
    distribution of amount and hour (for drift demonstrations)."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES + ["is_fraud"])
        for _ in range(rows):
            amount = round(math.exp(rng.gauss(3.5 + shift, 1.0)), 2)
            hour = int((rng.gauss(14 + 4 * shift, 5)) % 24)
            merchant_risk = round(rng.random(), 3)
            age = int(rng.expovariate(1 / 900))
            recent = min(int(rng.expovariate(1 / 3)), 40)
            score = (0.9 * math.log1p(amount) / 5 + 1.6 * merchant_risk
                     + (0.8 if hour < 6 else 0) - age / 2000 + recent / 15)
            p = 1 / (1 + math.exp(-(4 * score - 6)))
            w.writerow([amount, hour, merchant_risk, age, recent, int(rng.random() < p)])
    return path


def init_stack(directory: Path, name: str | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "mlform.yaml"
    written = []
    if not spec.exists():
        stack_name = name or _stack_name(directory)
        spec.write_text(STACK_TEMPLATE.format(name=stack_name))
        written.append(spec)
    data = directory / "data" / "transactions.csv"
    if not data.exists():
        write_sample_data(data)
        written.append(data)
    schema = directory / SCHEMA_FILE
    from .spec.schema import schema_json
    from .state.private import private_dir

    private_dir(schema.parent)  # an existing `.mlform` is tightened too

    schema.write_text(schema_json())
    written.append(schema)
    gitignore = directory / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(".mlform/\n")
        written.append(gitignore)
    return written


def _stack_name(directory: Path) -> str:
    import re

    base = re.sub(r"[^A-Za-z0-9_-]", "-", directory.resolve().name).strip("-") or "stack"
    return base if base[0].isalpha() else f"stack-{base}"
