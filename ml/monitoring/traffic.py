"""The table a monitor evaluates: one row per predicted instance, oldest first.

Every provider reads its platform's request logs (the local endpoint's
`requests.jsonl`, SageMaker's data capture, a batch job's output) into this one
shape, so the evaluation never knows where the rows came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Traffic:
    features: Any
    """pandas DataFrame: one column per logged feature name, one row per instance."""
    predictions: list[Any]
    """The model's answer for each instance; None where none was logged."""
    labels: list[Any]
    """The ground truth sent as feedback for each instance; None where none was sent."""
    times: list[float]
    scores: list[Any] | None = None
    """Each instance's class probabilities where the request asked for them (None
    elsewhere); None when the platform logs no scores at all."""

    def __len__(self) -> int:
        return len(self.predictions)

    def rows(self, start: int, stop: int | None = None) -> Traffic:
        return Traffic(self.features.iloc[start:stop].reset_index(drop=True),
                       self.predictions[start:stop], self.labels[start:stop],
                       self.times[start:stop],
                       None if self.scores is None else self.scores[start:stop])
