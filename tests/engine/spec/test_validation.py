"""Validation errors in words for provider inputs, where values may be revealed secrets."""

from __future__ import annotations

import pytest
from mlform.engine.spec.models import Model
from mlform.engine.spec.validation import describe_without_values
from pydantic import ValidationError


@pytest.mark.parametrize("gate, expected", [
    pytest.param({"metric": "auc", "min": "hunter2"}, "gates.0.min: expected a number",
                 id="ref-or-number-union"),  # the ${...} half of the union is not repeated
    pytest.param({"metric": "auc", "min": 0.5, "bogus": "hunter2"},
                 "gates.0.bogus: Extra inputs are not permitted", id="unknown-field"),
])
def test_validation_error_in_words_never_repeats_the_value(gate, expected):
    with pytest.raises(ValidationError) as exc:
        Model.model_validate({"type": "model", "artifact": "x", "gates": [gate]})
    text = describe_without_values(exc.value)
    assert text == expected
    assert "hunter2" not in text
