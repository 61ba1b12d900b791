"""`plan --preview`: how each model the plan would retrain would score, before merging.

For each `model` whose change comes from a `training_job` the plan creates or
replaces, the job is trained on a scratch copy of the stack with the `local`
provider (scratch.py), and the candidate is judged on the champion's held-out rows
against the model's gates (judge.py). The result is the plan document's `preview`
section, rendered by engine/views/preview_view.py:

    {"basis": "...", "row_cap": N,
     "models": [{"model", "training_job", "evaluated_on", "sampled",
                 "metrics": [{"metric", "before", "after"}],
                 "gates": [{"gate", "kind", "passed", "measured", "detail", "before",
                            "passed_before"}],
                 "error"}]}

Nothing of the real stack changes: its state is only read, and the copy's state,
data and runs live in a temporary directory removed afterwards.
"""

from __future__ import annotations

from typing import Any

RETRAINS = ("create", "update", "delete-then-create", "create-then-delete")
BASIS = ("trained on a scratch copy with the local provider; nothing in the stack "
         "changed")
DEFAULT_ROW_CAP = 100_000


def retrained(plan) -> list[tuple[Any, Any]]:
    """(model change, training job change) for each model the plan would retrain."""
    jobs = {c.name: c for c in plan.changes
            if c.type == "training_job" and c.action.value in RETRAINS}
    out = []
    for change in plan.changes:
        if change.type != "model" or change.action.value not in RETRAINS:
            continue
        job = next((jobs[d] for d in change.dependencies if d in jobs), None)
        if job is not None:
            out.append((change, job))
    return out


def make_preview(session, plan, state, row_cap: int = DEFAULT_ROW_CAP,
                 say=lambda line: None) -> dict[str, Any]:
    """The `preview` section of the plan document for `plan`."""
    from . import scratch as scratch_mod

    pairs = retrained(plan)
    section: dict[str, Any] = {"basis": BASIS, "row_cap": row_cap, "models": []}
    if not pairs:
        return section
    stack = session.stack
    jobs = sorted({job.name for _, job in pairs})
    say(f"preview: training {', '.join(jobs)} on a scratch copy with the local provider")
    try:
        copy = scratch_mod.build(stack, jobs, row_cap)
    except Exception as exc:  # a copy that cannot be made is a preview that says why
        section["models"] = [_entry(m, j, error=f"could not make the scratch copy: {exc}")
                             for m, j in pairs]
        return section
    try:
        failure = copy.apply(session.options.vars, session.options.var_files)
        scratch_state = {} if failure else copy.state().get("resources", {})
        for model, job in pairs:
            if failure:
                section["models"].append(_entry(model, job, error=failure))
                continue
            section["models"].append(_judge_one(session, state, copy, model, job,
                                                scratch_state))
    finally:
        copy.close()
    return section


def _entry(model, job, **extra) -> dict[str, Any]:
    return {"model": model.name, "training_job": job.name, "metrics": [], "gates": [],
            "evaluated_on": "", "sampled": "", "error": "", **extra}


def _judge_one(session, state, copy, model, job, scratch_state) -> dict[str, Any]:
    from mlform.engine.redaction import sensitive_gate_bounds
    from mlform.engine.values import contains_unknown, reveal

    from .judge import champion_rows, judge, run_dir

    trained = scratch_state.get(job.name) or {}
    candidate = run_dir(copy.data_dir(job.provider),
                        (trained.get("outputs") or {}).get("artifact"))
    if candidate is None:
        return _entry(model, job, error=f"the scratch copy recorded no run for '{job.name}'")
    prior_model = state.resources.get(model.name)
    prior_job = state.resources.get(job.name)
    provider_type = session.stack.providers[job.provider].type
    rows = champion_rows(session.dir, job.provider, provider_type,
                         reveal((prior_model.inputs or {}).get("artifact")) if prior_model
                         else None)
    gates = (model.after or {}).get("gates") or []
    if contains_unknown(gates):
        return _entry(model, job, error="the model's gates depend on values known only "
                                        "after apply")
    if rows is None:
        rows, where = candidate / "holdout.parquet", "the candidate's own held-out rows"
        if prior_model is not None:
            where += f" (the champion's figures are those its {provider_type} provider " \
                     "recorded in state)"
    else:
        where = "the champion's held-out rows"
    champion_metrics = ((prior_job.outputs or {}).get("metrics") or {}) if prior_job else {}
    champion_gates = ((prior_model.outputs or {}).get("gates") or []) if prior_model else []
    try:
        result = judge(candidate, reveal(gates), sensitive_gate_bounds(model.after or {}),
                       rows, reveal(champion_metrics), reveal(champion_gates))
    except Exception as exc:  # e.g. the champion's rows lack a column the candidate needs
        return _entry(model, job, error=f"could not judge the candidate: {exc}")
    return _entry(model, job, evaluated_on=f"{where}, {result['rows']} rows",
                  sampled="; ".join(f"{d}: {s}" for d, s in copy.sampled.items()),
                  metrics=result["metrics"], gates=result["gates"])
