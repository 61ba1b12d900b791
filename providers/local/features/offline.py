"""The offline side of a feature view: the feature table computed from a dataset, the
point-in-time-correct join of features onto labelled events, and the joined training
set a training job reads (cached beside the view's offline table)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .definition import Definition

TRAINING_DIR = "training"
ROW = "__mlform_row"


def feature_table(frame, definition: Definition):
    """Entity, event time (UTC) and every feature, ordered by event time (stable, so rows
    with the same time keep the dataset's order: the later one is the latest)."""
    import pandas as pd

    plain = [f.name for f in definition.features if f.expr is None]
    missing = [c for c in (definition.entity, definition.timestamp, *plain)
               if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(map(repr, missing))} not in the dataset "
                         f"(columns: {', '.join(map(str, frame.columns))})")
    work = frame.copy()
    for feature in definition.features:
        if feature.expr is None:
            continue
        try:
            work[feature.name] = work.eval(feature.expr)
        except Exception as e:  # any pandas error in a user's expression is theirs to fix
            raise ValueError(f"derived feature '{feature.name}': expression "
                             f"'{feature.expr}' failed: {e}") from None
    if work[definition.entity].isna().any():
        raise ValueError(f"entity column '{definition.entity}' has "
                         f"{int(work[definition.entity].isna().sum())} empty value(s)")
    times = _event_times(work[definition.timestamp], definition.timestamp, "dataset")
    table = pd.DataFrame({definition.entity: work[definition.entity].to_numpy(),
                          definition.timestamp: times.to_numpy()})
    for name in definition.names:
        table[name] = work[name].to_numpy()
    return table.sort_values(definition.timestamp, kind="mergesort").reset_index(drop=True)


def point_in_time_join(features_df, labels_df, entity: str, timestamp: str,
                       ttl: float | None):
    """`labels_df` (in its own row order) with, for each row, the feature values of the
    latest `features_df` row for the same entity whose time is at or before the row's
    time and, with a `ttl` (seconds), no older than that; null where there is none."""
    import pandas as pd

    for name, frame in (("labels", labels_df), ("features", features_df)):
        missing = [c for c in (entity, timestamp) if c not in frame.columns]
        if missing:
            raise ValueError(f"the {name} have no column(s) {', '.join(map(repr, missing))} "
                             f"(columns: {', '.join(map(str, frame.columns))})")
    clash = sorted(set(labels_df.columns) & set(features_df.columns) - {entity, timestamp})
    if clash:
        raise ValueError(f"column(s) {', '.join(map(repr, clash))} are both in the labels "
                         "and features of the view; rename them in the labels")
    left = labels_df.copy()
    left[timestamp] = _event_times(left[timestamp], timestamp, "labels")
    left[ROW] = range(len(left))
    right = features_df.copy()
    right[timestamp] = _event_times(right[timestamp], timestamp, "features")
    if left[entity].dtype != right[entity].dtype:
        # 7 and "7" are the same entity to the person who wrote the labels
        left[entity], right[entity] = left[entity].astype(str), right[entity].astype(str)
    joined = pd.merge_asof(
        left.sort_values(timestamp, kind="mergesort"),
        right.sort_values(timestamp, kind="mergesort"),
        on=timestamp, by=entity, direction="backward", allow_exact_matches=True,
        tolerance=pd.Timedelta(seconds=ttl) if ttl is not None else None)
    joined = joined.sort_values(ROW).drop(columns=ROW).reset_index(drop=True)
    joined[entity] = labels_df[entity].to_numpy()
    return joined


def training_set(paths, view_uri: str, labels_uri: str) -> tuple[Path, str]:
    """(file, version) of the view's features point-in-time joined onto the labels
    dataset; computed once per (view version, labels version) and kept."""
    import pandas as pd

    from ..dataset import load_dataset

    view_dir = paths.resolve(view_uri)
    meta_file = view_dir / "meta.json"
    if not meta_file.is_file():
        raise ValueError(f"feature view '{view_uri}' is not materialised at {view_dir}: "
                         "apply the feature view first")
    labels_meta = paths.resolve(labels_uri) / "meta.json"
    if not labels_meta.is_file():
        raise ValueError(f"labels '{labels_uri}' are not a stored dataset: apply the "
                         "labels dataset first")
    labels_version = json.loads(labels_meta.read_text())["version"]
    view = json.loads(meta_file.read_text())
    path = view_dir / TRAINING_DIR / f"{labels_version}.parquet"
    if not path.is_file():
        definition = Definition.from_dict(view["definition"])
        joined = point_in_time_join(pd.read_parquet(view_dir / "offline.parquet"),
                                    load_dataset(paths, labels_uri), definition.entity,
                                    definition.timestamp, definition.ttl_seconds)
        path.parent.mkdir(exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        joined.to_parquet(partial, index=False)
        os.replace(partial, path)
    return path, f"{view['version']}+{labels_version}"


def _event_times(values, column: str, where: str):
    import pandas as pd

    times = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = int(times.isna().sum())
    if bad:
        raise ValueError(f"event time column '{column}' of the {where} has {bad} value(s) "
                         "that are empty or not dates")
    return times
