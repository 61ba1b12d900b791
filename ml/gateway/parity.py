"""Parity before a cutover: do two endpoints answer alike?

Before a gateway moves any traffic from one endpoint to another, both answer the
same rows, the model's held-out rows first and then requests the gateway recently
forwarded, and their answers are compared against the gateway's `parity:`
condition: the share of rows with the same label (`min_label_agreement`) and the
largest difference of scores (`max_score_difference`; for numeric predictions the
numbers themselves, for `{label, score}` answers the scores). Every provider's
gateway judges with these, so a migration is held back on the same numbers
everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlform.engine.spec.models import Parity

from ..serving.reqlog import rolled_path

LOG_FILE = "requests.jsonl"
"""A gateway's log of forwarded requests: rows `{"t", "instances"}`."""
HOLDOUT_FILES = ("holdout.parquet", "holdout.csv")


@dataclass(frozen=True)
class ParityResult:
    rows: int
    """Rows both sides answered."""
    label_agreement: float | None
    max_score_difference: float | None
    breaches: list[str] = field(default_factory=list)
    """Each condition that does not hold, in words with the measured value."""
    sources: str = ""
    """Where the rows came from (`40 held-out rows, 12 logged requests`)."""

    @property
    def ok(self) -> bool:
        return not self.breaches

    def describe(self) -> str:
        measured = [f"label agreement {self.label_agreement:.3f}"
                    if self.label_agreement is not None else "",
                    f"largest score difference {self.max_score_difference:.4g}"
                    if self.max_score_difference is not None else ""]
        text = f"{self.rows} rows ({self.sources}): " + ", ".join(m for m in measured if m)
        return text + (f"; breached: {'; '.join(self.breaches)}" if self.breaches else "")


def held_out_rows(location: str | None) -> list[dict[str, Any]]:
    """The held-out rows at `location` without their target column: a training run's
    artifact (`file://.../artifact`, the rows kept beside it) or a csv/parquet file.
    Empty when there are none that can be read from here (another provider's storage)."""
    if not location:
        return []
    path = Path(location.removeprefix("file://"))
    candidates = [path] if path.is_file() else \
        [d / name for d in (path, path.parent) for name in HOLDOUT_FILES]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return []
    import pandas as pd

    frame = pd.read_parquet(found) if found.suffix == ".parquet" else pd.read_csv(found)
    target = _target(found.parent)
    if target in frame.columns:
        frame = frame.drop(columns=[target])
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return rows


def _target(run_dir: Path) -> str | None:
    for name in ("params.json", "settings.json"):
        try:
            return json.loads((run_dir / name).read_text()).get("target")
        except (FileNotFoundError, ValueError, AttributeError):
            continue
    return None


def logged_requests(directory: Path, limit: int) -> list[Any]:
    """The instances of the newest requests in a gateway's log, at most `limit`, newest
    first."""
    rows: list[Any] = []
    path = Path(directory) / LOG_FILE
    for log in (path, rolled_path(path)):
        if not log.exists():
            continue
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            rows.extend(reversed(record.get("instances") or []))
            if len(rows) >= limit:
                return rows[:limit]
    return rows


def sample(held_out: list[Any], logged: list[Any], size: int) -> tuple[list[Any], str]:
    """Up to `size` rows: held-out rows first (half, or more when few are logged), then
    logged requests, each in a form both sides take (logged rows as clients sent them)."""
    take_logged = min(len(logged), max(size // 2, size - len(held_out)))
    take_held = min(len(held_out), size - take_logged)
    rows = held_out[:take_held] + logged[:take_logged]
    return rows, f"{take_held} held-out rows, {take_logged} logged requests"


def compare(old: list[Any], new: list[Any], condition: Parity,
            sources: str = "") -> ParityResult:
    """Judge the two sides' answers to the same rows against `condition`."""
    if len(old) != len(new):
        return ParityResult(len(old), None, None,
                            [f"the sides answered {len(old)} and {len(new)} rows"], sources)
    if not old:
        return ParityResult(0, None, None, ["no rows to compare: the model has no readable "
                                            "held-out rows and no requests were logged"],
                            sources)
    agree = sum(1 for a, b in zip(old, new, strict=True) if _label(a) == _label(b))
    agreement = agree / len(old)
    diffs = [d for a, b in zip(old, new, strict=True) if (d := _score_diff(a, b)) is not None]
    largest = max(diffs) if diffs else None
    breaches = []
    minimum = condition.min_label_agreement
    if isinstance(minimum, int | float) and agreement < minimum:
        breaches.append(f"label agreement {agreement:.3f} ({agree} of {len(old)} rows) < "
                        f"min_label_agreement {minimum:g}")
    bound = condition.max_score_difference
    if isinstance(bound, int | float) and largest is not None and largest > bound:
        breaches.append(f"largest score difference {largest:.4g} > max_score_difference "
                        f"{bound:g}")
    return ParityResult(len(old), agreement, largest, breaches, sources)


def check(rows: list[Any], condition: Parity, sources: str,
          ask_old: Callable[[list[Any]], list[Any]],
          ask_new: Callable[[list[Any]], list[Any]], batch: int = 50) -> ParityResult:
    """Both sides answer `rows` (in batches), then `compare`. An exception from either
    side is a breach: a side that cannot answer is not at parity."""
    old: list[Any] = []
    new: list[Any] = []
    try:
        for chunk in _chunks(rows, batch):
            old.extend(ask_old(chunk))
            new.extend(ask_new(chunk))
    except Exception as e:  # noqa: BLE001 - the side's failure is the verdict
        return ParityResult(len(old), None, None, [f"a side did not answer: {e}"], sources)
    return compare(old, new, condition, sources)


def _chunks(rows: list[Any], size: int) -> Iterable[list[Any]]:
    """Batches of at most `size` rows of one form: an endpoint takes a batch of lists or
    of objects (held-out rows are objects, logged requests as clients sent them)."""
    chunk: list[Any] = []
    for row in rows:
        if chunk and (len(chunk) >= size or isinstance(row, dict) != isinstance(chunk[0], dict)):
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def _label(answer: Any) -> Any:
    if isinstance(answer, dict):
        return answer.get("label", answer.get("prediction"))
    if isinstance(answer, float) and not math.isnan(answer):
        return round(answer, 6)
    return answer


def _score(answer: Any) -> float | None:
    if isinstance(answer, dict):
        answer = answer.get("score", answer.get("probability"))
    if not isinstance(answer, float):
        return None  # a label (an int or a string) has no score
    return float(answer)


def _score_diff(a: Any, b: Any) -> float | None:
    sa, sb = _score(a), _score(b)
    return abs(sa - sb) if sa is not None and sb is not None else None
