"""A batch job's predictions as the table a monitor evaluates, as `traffic` reads an
endpoint's logged requests.

Each run of a local `batch_job` writes (see `providers/local/batch.py`):

    batch/<job>/<version>/predictions.parquet   every input column, then `prediction`
    batch/<job>/<version>/meta.json             {"version", "model", "input", "rows",
                                                 "created", ...}
    batch/<job>/runs.jsonl                      one line per run, the newest last

and the model that scored it has a card (`registry/<model>/<version>/card.json`) that
names its `target` and its `features`.

A monitor names the output by the job's `output_uri` (`local://batch/<job>/<version>`),
or by the job's id (its name), which stands for the newest run still on disk. Rows
keep the order of the input, so the newest rows are the last ones in the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlform.ml.monitoring.traffic import Traffic

from ..batch import PREDICTION_COLUMN, PREDICTIONS, RUNS
from ..paths import SCHEME, LocalPaths, batch_uri

BATCH_PREFIX = f"{SCHEME}batch/"


@dataclass(frozen=True)
class BatchOutput:
    uri: str
    """`local://batch/<job>/<version>`, the output evaluated."""
    predictions: Path
    rows: int
    created: float
    """Unix time of the run that scored it."""
    model: str
    target: str | None
    """The column the model predicts, when its card is found; the labels, when the
    scored input carried that column."""
    model_features: list[str] | None
    columns: list[str]
    """The columns of predictions.parquet."""


def locate(paths: LocalPaths, batch_job: str,
           stack_outputs: Mapping[str, Mapping[str, Any]] | None = None) -> BatchOutput:
    """The output `batch_job` (an output uri or a job's name) names now. With
    `stack_outputs`, an output uri follows its job to the output it holds in state."""
    uri = _current(batch_job, stack_outputs or {}) if "://" in batch_job \
        else _newest_run(paths, batch_job)
    if not uri.startswith(BATCH_PREFIX):
        raise ValueError(f"batch_job '{batch_job}' is not a batch job of the local provider: "
                         "use its output uri, such as '${score.output_uri}'")
    directory = paths.resolve(uri)
    if not (directory / "meta.json").is_file() or not (directory / PREDICTIONS).is_file():
        raise ValueError(f"batch output '{uri}' not found at '{directory}': apply the batch "
                         "job first")
    import pyarrow.parquet as pq

    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    card = _card(paths, str(meta.get("model", "")))
    return BatchOutput(uri=uri, predictions=directory / PREDICTIONS, rows=int(meta["rows"]),
                       created=_unix_time(meta.get("created")), model=str(meta.get("model")),
                       target=card.get("target"), model_features=card.get("features"),
                       columns=list(pq.read_schema(directory / PREDICTIONS).names))


def feature_columns(output: BatchOutput, reference_columns: list[str],
                    named: list[str] | None = None) -> list[str]:
    """The features to compare: `named`, or the reference's columns the model used (all
    of them but the target and `prediction` when the model's card is gone). Each must
    be in the output: ValueError names the missing ones."""
    wanted = list(named) if named else [
        c for c in reference_columns if c not in (output.target, PREDICTION_COLUMN)
        and (output.model_features is None or c in output.model_features)]
    if not wanted:
        raise ValueError(f"the reference dataset has none of the features of model "
                         f"'{output.model}' that scored '{output.uri}': use the model's "
                         "training data as the reference")
    missing = [c for c in wanted if c not in output.columns]
    if missing and output.rows:  # an empty input leaves a file with `prediction` alone
        instead = "leave them out of 'features'" if named else \
            "list the features to compare in 'features'"
        raise ValueError(f"batch output '{output.uri}' lacks the reference's feature "
                         f"column(s) {', '.join(repr(c) for c in missing)}: score data that "
                         f"has them, or {instead}")
    return wanted


def read_batch_output(output: BatchOutput, features: list[str], last_rows: int) -> Traffic:
    """The last `last_rows` rows of the output: `features` as the table, `prediction` as
    the predictions, and the target column, when the input carried it, as the labels."""
    import pandas as pd
    import pyarrow.parquet as pq

    if not output.rows:
        return Traffic(pd.DataFrame(columns=features), [], [], [])
    file = pq.ParquetFile(output.predictions)
    total = file.metadata.num_rows
    start = max(0, total - last_rows)
    # read only the row groups that hold the tail: an output may be far larger than a window
    groups, first = [], total
    for group in reversed(range(file.num_row_groups)):
        if first <= start:
            break
        groups.insert(0, group)
        first -= file.metadata.row_group(group).num_rows
    labelled = output.target in output.columns and output.target not in features
    columns = [*features, PREDICTION_COLUMN, *([output.target] if labelled else [])]
    frame = file.read_row_groups(groups, columns=columns).to_pandas()
    frame = frame.iloc[start - first:].reset_index(drop=True)
    labels = (frame[output.target].astype(object).where(frame[output.target].notna(), None)
              .tolist() if labelled else [None] * len(frame))
    return Traffic(frame[features], frame[PREDICTION_COLUMN].tolist(), labels,
                   [output.created] * len(frame))


def _current(uri: str, stack_outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """The output uri the job that wrote `uri` holds now; `uri` when it is not in state."""
    prefix = uri.rsplit("/", 1)[0] + "/"
    if not uri.startswith(BATCH_PREFIX):
        return uri
    for outputs in stack_outputs.values():
        now = outputs.get("output_uri")
        if isinstance(now, str) and now.startswith(prefix):
            return now
    return uri


def _newest_run(paths: LocalPaths, job: str) -> str:
    if not job or "/" in job or job in (".", ".."):
        raise ValueError(f"batch_job '{job}' is neither a batch job's name nor its output "
                         "uri: use '${score.output_uri}'")
    log = paths.batch_versions(job) / RUNS
    runs = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    for line in reversed(runs):
        version = json.loads(line).get("version")
        if version and (paths.batch(job, version) / PREDICTIONS).is_file():
            return batch_uri(job, version)
    raise ValueError(f"batch job '{job}' has no output under '{log.parent}': apply it first")


def _card(paths: LocalPaths, model: str) -> dict[str, Any]:
    """The model's card, or {} when the model is not a registered local version."""
    if not model.startswith(f"{SCHEME}models/"):
        return {}
    card = paths.resolve(model) / "card.json"
    return json.loads(card.read_text(encoding="utf-8")) if card.is_file() else {}


def _unix_time(created: str | None) -> float:
    if not created:
        return 0.0
    return datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
