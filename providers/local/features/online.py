"""The online store of a feature view: one SQLite row per entity holding its latest
feature values and their event time, for lookups by entity key at serving time.

    meta      (key, value)                        entity, features, ttl_seconds, version
    features  (entity_key, event_time, features)  entity_key: the key as text; event_time:
                                                  ISO-8601 UTC; features: a JSON object

A value older than the view's ttl at lookup time reads as null, as it would in a
point-in-time join made at that time.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from .definition import Definition


def write_online_store(path: Path, table, definition: Definition, version: str) -> int:
    """Replace the store at `path` with the latest row per entity of `table` (the view's
    offline table, ordered by event time); returns the number of entities."""
    latest = table.drop_duplicates(definition.entity, keep="last")
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    names = definition.names
    rows = ((str(key), when.isoformat(), json.dumps({n: _plain(v) for n, v in zip(names, values,
                                                                                 strict=True)}))
            for key, when, *values in latest[[definition.entity, definition.timestamp, *names]]
            .itertuples(index=False, name=None))
    with closing(sqlite3.connect(partial)) as db, db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE features (entity_key TEXT PRIMARY KEY, "
                   "event_time TEXT NOT NULL, features TEXT NOT NULL)")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("entity", definition.entity), ("features", json.dumps(names)),
            ("ttl_seconds", json.dumps(definition.ttl_seconds)), ("version", version)])
        db.executemany("INSERT INTO features VALUES (?, ?, ?)", rows)
    os.replace(partial, path)
    return len(latest)


def online_features(store_path: str | Path, entity_keys: list[Any],
                    as_of=None) -> list[dict[str, Any]]:
    """For each key, in order: the entity, `event_time` and every feature's latest value;
    values are null for an unknown entity or one whose values are older than the ttl at
    `as_of` (default now)."""
    import pandas as pd

    if not Path(store_path).is_file():
        raise ValueError(f"no online store at {store_path}: apply the feature view first")
    with closing(sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        names = json.loads(meta["features"])
        found = {}
        for key in dict.fromkeys(str(k) for k in entity_keys):
            row = db.execute("SELECT event_time, features FROM features WHERE entity_key = ?",
                             (key,)).fetchone()
            if row:
                found[key] = row
    ttl = json.loads(meta["ttl_seconds"])
    now = pd.Timestamp(as_of if as_of is not None else pd.Timestamp.now(tz="UTC"))
    now = now.tz_localize("UTC") if now.tzinfo is None else now
    out = []
    for key in entity_keys:
        event_time, values = found.get(str(key), (None, None))
        fresh = values is not None and (
            ttl is None or now - pd.Timestamp(event_time) <= pd.Timedelta(seconds=ttl))
        features = json.loads(values) if fresh else dict.fromkeys(names)
        out.append({meta["entity"]: key, "event_time": event_time, **features})
    return out


def _plain(value: Any) -> Any:
    """A JSON value for one cell: numpy scalars as numbers, times as ISO text, NaN as null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "isoformat"):
        return None if str(value) == "NaT" else value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value
