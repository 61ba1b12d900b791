"""The model card of a registered version: what it is for, what it learned from, how it
did on held-out data and at its gates; as data (`card.json`) and as text (`card.md`).

A card is a document to share, so a field written from a sensitive value reads
"(sensitive)" in it, as such values do in plans and state; apply still succeeds.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mlform.engine.redaction import HIDDEN

TEXT_FIELDS = ("owner", "intended_use", "description")
"""The model's own fields that the card repeats; `sensitive` names those to redact."""


def build_card(*, model: str, version: int, created: str, spec, run: dict[str, Any],
               params: dict[str, Any], metrics: dict[str, float],
               gates: list[dict[str, Any]], profile_summary: dict[str, Any] | None,
               artifact_meta: dict[str, Any],
               sensitive: Collection[str] = ()) -> dict[str, Any]:
    text = {f: HIDDEN if f in sensitive else getattr(spec, f) for f in TEXT_FIELDS}
    return {
        "model": model,
        "version": version,
        "created": created,
        "owner": text["owner"],
        "intended_use": text["intended_use"],
        "description": text["description"],
        "task": artifact_meta["task"],
        "target": artifact_meta.get("target"),
        "features": artifact_meta["features"],
        "classes": artifact_meta.get("classes"),
        "run": run,
        "data": {"uri": params.get("data", {}).get("uri"),
                 "version": params.get("data", {}).get("version"),
                 "profile": profile_summary},
        "training": {k: params.get(k) for k in ("algorithm", "hyperparameters", "seed",
                                                "test_size", "code_digest")}
        | {"entrypoint": params.get("entrypoint") and params["entrypoint"].rsplit("/", 1)[-1]},
        "metrics": metrics,
        "gates": gates,
        "fairness": {g["gate"]: g["groups"] for g in gates if g.get("groups")},
        "decision": [{"gate": g["gate"], "threshold": g["threshold"], "costs": g["costs"],
                      "cost_per_row": g["measured"]}
                     for g in gates if g.get("threshold") is not None],
        "importance": None,
        "framework": artifact_meta.get("framework", {}),
    }


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['model']} version {card['version']}", "",
             f"- Registered: {card['created']}",
             f"- Owner: {card['owner'] or 'not stated'}",
             f"- Intended use: {card['intended_use'] or 'not stated'}",
             f"- Task: {card['task']}, predicting `{card['target']}`"]
    if card["classes"]:
        lines.append(f"- Classes: {', '.join(map(str, card['classes']))}")
    lines += [f"- Training run: {card['run']['run_id']} ({card['run']['artifact']})", "",
              "## Data", "",
              f"- Dataset: {card['data']['uri']} (version {card['data']['version']})"]
    profile = card["data"]["profile"]
    if profile:
        lines += [f"- Rows: {profile['rows']}", "", "| column | kind | nulls | summary |",
                  "|---|---|---|---|"]
        for name, col in profile["columns"].items():
            summary = f"mean {col['mean']:.4g}, std {col['std']:.4g}" \
                if col["kind"] == "numeric" and col.get("mean") is not None \
                else f"{col.get('unique', 0)} distinct values"
            lines.append(f"| {name} | {col['kind']} | {col['nulls']} | {summary} |")
    lines += ["", "## Training", ""]
    lines += [f"- {k}: {v}" for k, v in card["training"].items() if v is not None]
    lines += [f"- features: {', '.join(card['features'])}", "", "## Held-out metrics", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in card["metrics"].items()
              if isinstance(v, int | float)]
    lines += ["", "## Gates", ""]
    if card["gates"]:
        lines += ["| gate | measured | result |", "|---|---|---|"]
        for g in card["gates"]:
            measured = "n/a" if g["measured"] is None else f"{g['measured']:.4f}"
            lines.append(f"| {g['gate']} | {measured} | {'pass' if g['passed'] else 'FAIL'} |")
    else:
        lines.append("No gates were declared.")
    for decision in card.get("decision") or []:
        costs = decision["costs"]
        lines += ["", "## Decision threshold", "",
                  f"Predict the positive class when its probability is at least "
                  f"{decision['threshold']:.4f}: the threshold of least expected cost on the "
                  f"held-out rows ({decision['cost_per_row']:.4f} per row) with a false "
                  f"positive costing {costs['false_positive']:g} and a false negative "
                  f"{costs['false_negative']:g} (gate '{decision['gate']}')."]
    importance = card.get("importance")
    if importance and importance.get("features"):
        lines += ["", "## Feature importance", "",
                  f"Permutation importance on {importance['rows']} held-out rows: the drop "
                  f"of {importance['metric']} (baseline {importance['baseline']:.4f}) when the "
                  f"feature's values are shuffled, mean of {importance['repeats']} shuffles.",
                  "", "| feature | importance | std |", "|---|---|---|"]
        lines += [f"| {f['feature']} | {f['importance']:.4f} | {f['std']:.4f} |"
                  for f in importance["features"]]
    elif importance:
        lines += ["", "## Feature importance", "", f"Not measured: {importance['note']}"]
    for gate, groups in card["fairness"].items():
        lines += ["", f"## Fairness by group: {gate}", "",
                  "| group | count | selection rate | accuracy |", "|---|---|---|---|"]
        lines += [f"| {g} | {int(m['count'])} | {m['selection_rate']:.4f} | "
                  f"{m['accuracy']:.4f} |" for g, m in groups.items()]
    return "\n".join(lines) + "\n"
