"""Data and scripts the slurm tests train on."""

CSV = "amount,age,is_fraud\n" + "".join(
    f"{i * 3.5 % 97},{20 + i % 40},{int(i % 7 == 0)}\n" for i in range(60))

WAITING_SCRIPT = '''\
"""Waits until the file named by the `release` hyperparameter exists, then trains."""
import json
import os
import time
from pathlib import Path

import pandas as pd
from mlform.ml import trainers
from mlform.ml.artifact import save_model

release = Path(json.loads(Path(os.environ["MLFORM_HYPERPARAMETERS"]).read_text())["release"])
deadline = time.time() + 120
while not release.exists() and time.time() < deadline:
    time.sleep(0.1)
frame = pd.read_parquet(os.environ["MLFORM_TRAIN_DATA"])
network, meta = trainers.train("logistic_regression", {"epochs": 1}, frame,
                               json.loads(os.environ["MLFORM_FEATURES"]),
                               os.environ["MLFORM_TARGET"], int(os.environ["MLFORM_SEED"]))
save_model(os.environ["MLFORM_MODEL_DIR"], network, meta)
'''
