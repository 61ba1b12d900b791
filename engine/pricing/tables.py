"""The dated price tables: the ones kept beside this module, and an organisation's own.

`MLFORM_PRICING` names a JSON file (its `provider` key says which provider type it
prices) or a folder of `<provider type>.json` files. An override's `training` and
`serving` entries are added to (or replace) the shipped ones; its `as_of`, `source`,
`region`, `currency`, `note` and `storage_gb_month` replace them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..diagnostics import MlformError

ENV = "MLFORM_PRICING"
HERE = Path(__file__).parent
SECTIONS = ("training", "serving")
SCALARS = ("as_of", "source", "region", "currency", "note", "storage_gb_month", "provider")


def table(provider_type: str) -> dict[str, Any] | None:
    """The prices of a provider type, with `file` (where they came from); None when
    neither the shipped tables nor an override prices it."""
    shipped = HERE / f"{provider_type}.json"
    out = _read(shipped) if shipped.exists() else None
    if out is not None:
        out["file"] = f"{shipped.name} (shipped with mlform)"
    override = _override(provider_type)
    if override is None:
        return out
    path, data = override
    merged: dict[str, Any] = dict(out or {})
    for key in SECTIONS:
        merged[key] = {**(out or {}).get(key, {}), **data.get(key, {})}
    for key in SCALARS:
        if key in data:
            merged[key] = data[key]
    merged["file"] = str(path)
    return merged


def _override(provider_type: str) -> tuple[Path, dict[str, Any]] | None:
    setting = os.environ.get(ENV)
    if not setting:
        return None
    path = Path(setting)
    if path.is_dir():
        path = path / f"{provider_type}.json"
        return (path, _read(path)) if path.exists() else None
    if not path.exists():
        raise MlformError.simple(f"{ENV} names '{setting}', which does not exist",
                                 help="set it to a price table (JSON) or a folder of "
                                      "<provider type>.json tables, or unset it")
    data = _read(path)
    return (path, data) if data.get("provider") == provider_type else None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MlformError.simple(f"cannot read the price table {path}: {exc}",
                                 help="a price table is JSON; see docs/cost.md") from None
    problem = _problem(data)
    if problem:
        raise MlformError.simple(f"price table {path}: {problem}",
                                 help="see docs/cost.md for the format of a price table")
    return data


def _problem(data: Any) -> str:
    if not isinstance(data, dict):
        return "must be a JSON object"
    for key in SECTIONS:
        prices = data.get(key, {})
        if not isinstance(prices, dict) or not all(
                isinstance(v, int | float) and v >= 0 for v in prices.values()):
            return f"'{key}' must map type names to hourly prices (numbers)"
    storage = data.get("storage_gb_month", 0)
    if not isinstance(storage, int | float) or storage < 0:
        return "'storage_gb_month' must be a price per GB-month (a number)"
    unknown = set(data) - set(SECTIONS) - set(SCALARS)
    if unknown:
        return f"unknown key(s) {sorted(unknown)}"
    return ""
