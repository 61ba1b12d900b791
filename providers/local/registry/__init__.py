"""The local `model`: a versioned registry with aliases, evaluation gates and model cards."""
