"""The cost section of a plan: each created, changed or destroyed resource's hourly and
monthly cost on a priced provider, and the plan's totals.

A resource's monthly delta is what it costs a month after the apply less what it cost
before (always-on serving and storage); a training run is a one-off cost, counted apart.
A new dataset version adds its bytes (earlier versions stay where they are stored).
Resources on providers that report no usage (`local`) have no entry; when no resource
has one, the plan has no cost section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plan.model import Action, Plan, ResourceChange
from .tables import table
from .usage import HOURS_PER_MONTH, Usage, UsageRequest, UsageResponse

ROUND = 4


def estimate(plan: Plan, provider_types: dict[str, str], providers: Any) -> dict | None:
    """The plan document's `cost` section; `provider_types` maps provider names to types,
    `providers.get(name)` gives the provider."""
    resources: list[dict] = []
    tables: dict[str, dict] = {}

    def priced(name: str, change: ResourceChange, inputs: dict | None) -> _Priced | None:
        """What `inputs` cost on provider `name`; None where it prices nothing (local)."""
        if name not in provider_types:
            return None
        try:
            usage = getattr(providers.get(name), "usage", None)
        except Exception:  # a provider that cannot start is reported by the plan itself
            return None
        response = _ask(usage, change, inputs) if usage is not None else None
        ptype = provider_types[name]
        if response is None or (ptype not in tables and table(ptype) is None):
            return None
        tables.setdefault(ptype, table(ptype) or {})
        return _Priced(ptype, response, tables[ptype])

    for change in plan.changes:
        if change.action is Action.NOOP:
            continue
        after = priced(change.provider, change, change.after) \
            if change.action is not Action.DELETE else None
        # a move's old object is priced where it was (`moved_from`)
        old = getattr(change, "moved_from", "") or change.provider
        before = priced(old, change, change.before) \
            if change.before is not None and change.action is not Action.CREATE else None
        if after is None and before is None:
            continue
        entry = _resource(change, after, before)
        if entry["items"] or entry["unpriced"] or entry["monthly_delta"]:
            resources.append(entry)  # a type that runs and keeps nothing billable is left out
    if not resources:
        return None
    currency = next(iter(tables.values())).get("currency", "USD")
    return {
        "currency": currency,
        "tables": [{k: t.get(k) for k in ("provider", "as_of", "region", "source", "note",
                                          "file")} | {"provider": p}
                   for p, t in sorted(tables.items())],
        "resources": resources,
        "total_monthly_delta": round(sum(r["monthly_delta"] for r in resources), ROUND),
        "total_one_off": round(sum(r["one_off"] for r in resources), ROUND),
        "unpriced": [f"{r['name']}: {why}" for r in resources for why in r["unpriced"]],
    }


@dataclass(frozen=True)
class _Priced:
    provider_type: str
    usage: UsageResponse
    prices: dict


def _ask(usage, change: ResourceChange, inputs: dict | None) -> UsageResponse | None:
    try:
        return usage(UsageRequest(change.name, change.type, inputs or {}))
    except Exception as exc:  # a provider's failure costs the estimate, not the plan
        return UsageResponse(unknown=f"the provider could not size it: {exc}")


def _resource(change: ResourceChange, after: _Priced | None, before: _Priced | None) -> dict:
    unpriced: list[str] = [after.usage.unknown] if after and after.usage.unknown else []
    items = [_priced(u, after.prices, unpriced) for u in after.usage.items] if after else []
    # A dataset's earlier versions stay stored: a new one adds, only a delete removes.
    keep = change.action is Action.DELETE or before is not None and after is not None \
        and before.provider_type != after.provider_type
    old = [_priced(u, before.prices, []) for u in before.usage.items
           if keep or u.kind != "storage"] if before else []
    if change.action is Action.MOVE:  # a move copies a finished run: it trains nothing
        items = [i for i in items if not i["one_off"]]
    monthly = sum(i["monthly"] for i in items)
    hourly = sum(i["hourly"] for i in items)
    return {
        "name": change.name, "type": change.type, "provider": change.provider,
        "provider_type": (after or before).provider_type,  # type: ignore[union-attr]
        "action": change.action.value,
        "hourly": round(hourly, ROUND), "monthly": round(monthly, ROUND),
        "one_off": round(sum(i["one_off"] for i in items), ROUND),
        "monthly_delta": round(monthly - sum(i["monthly"] for i in old), ROUND),
        "items": items, "unpriced": unpriced,
    }


def _priced(u: Usage, prices: dict, unpriced: list[str]) -> dict:
    out: dict[str, Any] = {"what": u.what, "sku": u.sku, "quantity": u.quantity,
                           "hours": u.hours, "assumption": u.assumption,
                           "unit_price": None, "hourly": 0.0, "monthly": 0.0, "one_off": 0.0}
    if u.kind == "storage":
        price = prices.get("storage_gb_month")
        out["unit"] = "GB-month"
    else:
        price = prices.get(u.kind, {}).get(u.sku)
        out["unit"] = "hour"
    if price is None:
        unpriced.append(f"no {u.kind} price for '{u.sku}' in the {prices.get('provider')} "
                        "table (add it with MLFORM_PRICING)")
        return out
    out["unit_price"] = price
    if u.quantity is None:
        unpriced.append(f"{u.what}: {u.assumption or 'size known after apply'}")
        return out
    if u.kind == "storage":
        out["monthly"] = round(price * u.quantity, ROUND)
        out["hourly"] = round(price * u.quantity / HOURS_PER_MONTH, ROUND)
    elif u.hours is None:
        out["hourly"] = round(price * u.quantity, ROUND)
        out["monthly"] = round(price * u.quantity * HOURS_PER_MONTH, ROUND)
    else:
        out["hourly"] = round(price * u.quantity, ROUND)
        out["one_off"] = round(price * u.quantity * u.hours, ROUND)
    return out
