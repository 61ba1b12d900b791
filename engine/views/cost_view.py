"""The plan's cost section in words: one line per priced resource, the totals, and the
tables the prices come from (date and source), for the text and markdown plans."""

from __future__ import annotations

from typing import Any

SIGN = {"create": "+", "update": "~", "delete": "-", "delete-then-create": "-/+",
        "create-then-delete": "+/-", "move": "->"}


def money(value: float, signed: bool = False) -> str:
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    return f"{sign}${abs(value):,.2f}"


def item_text(item: dict[str, Any]) -> str:
    if item["unit"] == "GB-month":
        size = "size unknown" if item["quantity"] is None else f"{item['quantity']:.6g} GB"
        return f"{item['what']}: {size} x {_price(item['unit_price'])}/GB-month"
    count = "?" if item["quantity"] is None else f"{item['quantity']:g}"
    line = f"{item['what']}: {item['sku']} x {count} at {_price(item['unit_price'])}/h"
    if item["hours"] is not None:
        line += f" for {item['hours']:g} h"
    return line + (f" ({item['assumption']})" if item["assumption"] else "")


def rate(value: float) -> str:
    """An hourly figure: cents and, where they matter, tenths of cents."""
    whole, cents = f"{value:,.4f}".split(".")
    cents = cents.rstrip("0")
    return f"${whole}.{cents + '0' * (2 - len(cents))}"


def _price(value: float | None) -> str:
    return "(no price)" if value is None else f"${value:g}"


def resource_summary(r: dict[str, Any]) -> str:
    parts = []
    if r["hourly"]:
        parts.append(f"{rate(r['hourly'])}/h")
    if r["monthly_delta"] or r["monthly"]:
        parts.append(f"{money(r['monthly_delta'], signed=True)}/month")
    if r["one_off"]:
        parts.append(f"{money(r['one_off'])} one-off")
    return ", ".join(parts) or "$0.00"


def totals(cost: dict[str, Any]) -> str:
    return (f"{money(cost['total_monthly_delta'], signed=True)}/month, "
            f"{money(cost['total_one_off'])} one-off (training runs)")


def sources(cost: dict[str, Any]) -> list[str]:
    return [f"{t['provider']}: {cost['currency']} list prices, {t.get('region') or 'any region'}, "
            f"as of {t.get('as_of')}; source {t.get('source')} [{t.get('file')}]"
            for t in cost["tables"]]


def text_lines(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return []
    lines = ["", "Estimated cost:"]
    for r in cost["resources"]:
        lines.append(f"  {SIGN.get(r['action'], ' ')} {r['type']}.{r['name']}: "
                     f"{resource_summary(r)}")
        lines.extend(f"      {item_text(i)}" for i in r["items"])
    lines.append(f"  Total: {totals(cost)}")
    lines.extend(f"  not estimated: {u}" for u in cost["unpriced"])
    lines.extend(f"  prices: {s}" for s in sources(cost))
    return lines


def markdown_lines(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return []
    out = [f"**Estimated cost: {totals(cost)}**", "",
           "| Resource | Action | Hourly | Monthly delta | One-off | Based on |",
           "|---|---|---|---|---|---|"]
    for r in cost["resources"]:
        basis = "; ".join(item_text(i) for i in r["items"]).replace("|", "\\|")
        out.append(f"| `{r['name']}` | {r['action']} | {rate(r['hourly'])} | "
                   f"{money(r['monthly_delta'], signed=True)} | {money(r['one_off'])} | "
                   f"{basis} |")
    out.append("")
    out.extend(f"> not estimated: {u}" for u in cost["unpriced"])
    out.extend(f"<sub>Prices: {s}</sub>" for s in sources(cost))
    out.append("")
    return out
