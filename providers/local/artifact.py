"""The artifact format under the name earlier releases documented for training scripts
(`from mlform.providers.local.artifact import save_model`). It lives in the portable core
now, `mlform.ml.artifact`; this name keeps existing scripts working."""

from mlform.ml.artifact import (
    FORMAT_VERSION,
    META_FILE,
    MODEL_FILE,
    TASKS,
    Predictor,
    check_meta,
    encode,
    encoded_width,
    load_predictor,
    read_meta,
    save_model,
)

__all__ = ["FORMAT_VERSION", "META_FILE", "MODEL_FILE", "TASKS", "Predictor", "check_meta",
           "encode", "encoded_width", "load_predictor", "read_meta", "save_model"]
